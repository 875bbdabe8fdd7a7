"""Whose data a login sees: the identity rule (memstore.identity) and the page that uses it (issue 24, item 7)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, plain
from memstore import InvalidInput, MemorySettings, SqlStore
from memstore.identity import LOCAL_USER, normalized_email, user_id_from_claims

ISSUER = "https://id.example.test"
AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "s",
    "client_id": "c",
    "client_secret": "x",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


def claims(**extra: object) -> dict[str, object]:
    return {"iss": ISSUER, "sub": "248289761001", **extra}


# -- the rule ---------------------------------------------------------------------------------------


def test_a_verified_email_is_the_user():
    assert user_id_from_claims(claims(email="alice@example.com", email_verified=True)) == "alice@example.com"


@pytest.mark.parametrize("verified", [False, None, "false", "true", "True", 1, "yes"])
def test_an_email_that_is_not_verified_by_a_boolean_true_never_names_the_user(verified):
    extra = {} if verified is None else {"email_verified": verified}
    user = user_id_from_claims(claims(email="alice@example.com", **extra))
    assert user == f"sub:{ISSUER}#248289761001"
    assert "alice" not in user


@pytest.mark.parametrize(
    "spelling",
    [
        "Alice@Example.com",
        "  alice@example.com\n",
        "ALICE@EXAMPLE.COM",
        "ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        "alice@example.com.",
    ],
)
def test_case_width_and_whitespace_never_split_one_person(spelling):
    assert user_id_from_claims(claims(email=spelling, email_verified=True)) == "alice@example.com"


def test_a_unicode_domain_and_its_ascii_form_are_one_person():
    assert normalized_email("anna@bücher.example") == normalized_email("anna@xn--bcher-kva.example")
    assert normalized_email("anna@bücher.example") == "anna@xn--bcher-kva.example"


@pytest.mark.parametrize(
    "hostile",
    [
        "alice\u200b@example.com",  # zero-width space: looks like Alice
        "alice@example.com\u202e",  # bidi override
        "al ice@example.com",
        "alice@example.com@evil.example",
        '"sub:x"@example.com',
        "alice@",
        "@example.com",
        "alice",
        "alice@exa..mple.com",
        "\x00alice@example.com",
        "a" * 300 + "@example.com",
        42,
    ],
)
def test_a_verified_email_that_is_not_a_plain_address_falls_back_to_the_subject(hostile):
    user = user_id_from_claims(claims(email=hostile, email_verified=True))
    assert user == f"sub:{ISSUER}#248289761001"


def test_cyrillic_look_alike_is_another_person_not_alice():
    """NFKC leaves a Cyrillic а as it is: a different mailbox, so a different user (never Alice's data)."""
    assert normalized_email("\u0430lice@example.com") != "alice@example.com"


@pytest.mark.parametrize("subject", ["local", "alice@example.com", LOCAL_USER])
def test_no_subject_can_become_the_local_user_or_an_email(subject):
    user = user_id_from_claims({"iss": ISSUER, "sub": subject})
    assert user != LOCAL_USER and user != "alice@example.com" and user.startswith("sub:")


def test_the_same_subject_at_two_issuers_is_two_people():
    a = user_id_from_claims({"iss": "https://a.example", "sub": "1"})
    b = user_id_from_claims({"iss": "https://b.example", "sub": "1"})
    assert a != b


def test_an_issuer_cannot_forge_another_issuers_subject_with_a_fragment():
    """Were "#" allowed in an issuer, `https://a.example#1` + `x` and `https://a.example` + `1#x` would meet."""
    with pytest.raises(InvalidInput, match="cannot tell whose data"):
        user_id_from_claims({"iss": "https://a.example#1", "sub": "x"})


def test_a_very_long_subject_gets_a_stable_short_id():
    long = {"iss": ISSUER, "sub": "s" * 500}
    user = user_id_from_claims(long)
    assert len(user) <= 200 and user == user_id_from_claims(dict(long))
    assert user != user_id_from_claims({"iss": ISSUER, "sub": "s" * 499})


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"sub": "local"},  # no issuer
        {"iss": "local", "sub": "x"},  # issuer is not a URL
        {"iss": ISSUER},
        {"iss": ISSUER, "sub": ""},
        {"iss": ISSUER, "sub": 7},
        {"iss": ISSUER, "sub": "a\x00b"},
        {"iss": ISSUER, "sub": "\ud800"},
        {"email": "alice@example.com", "email_verified": False},
    ],
)
def test_claims_that_name_no_one_are_refused_with_a_sentence(bad):
    with pytest.raises(InvalidInput, match="cannot tell whose data to show"):
        user_id_from_claims(bad)


# -- the page ---------------------------------------------------------------------------------------


@pytest.fixture
def alice_and_local(tmp_path, monkeypatch, app_env):
    """A database where Alice and the pre-login user `local` each have one conversation."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("MEMORYLAB_DATA_DIR", str(tmp_path / "data"))
    store = SqlStore.open(url)
    for user, title, text in [
        ("alice@example.com", "Alice private", "alice passport ZEBRA-7781"),
        (LOCAL_USER, "Before login", "local secret LOCAL-4242"),
    ]:
        conv = store.create_conversation(user, title, MemorySettings("buffer"))
        msg = store.add_user_message(user, conv.id, text, tokens=1, tokenizer="t")
        store.add_reply(user, conv.id, msg.turn, "ok", status="complete", tokens=1, tokenizer="t")
    store.close()
    return url


def logged_in(page: str, user: dict[str, object]) -> AppTest:
    at = AppTest.from_file(str(ROOT / page), default_timeout=30)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, **user}
    at.run()
    assert not at.exception, at.exception
    return at


def everything_shown(at: AppTest) -> str:
    """Every string the page put on screen (main and sidebar), escapes removed."""
    texts = []
    for element in (*at.main, *at.sidebar):
        for attr in ("value", "label", "options"):
            value = getattr(element, attr, None)
            texts.append(plain(value) if isinstance(value, str) else repr(value))
    return "\n".join(texts)


@pytest.mark.parametrize("page", ["app.py", "app_pages/conversations.py"])
def test_an_unverified_alice_email_does_not_see_alices_data(alice_and_local, page):
    at = logged_in(page, {"iss": ISSUER, "sub": "mallory-1", "email": "alice@example.com", "email_verified": False})
    shown = everything_shown(at)
    assert "Alice private" not in shown and "ZEBRA" not in shown
    assert "Before login" not in shown and "LOCAL-4242" not in shown
    assert "Logged in as sub:https://id.example.test#mallory-1" in shown
    store = SqlStore.open(alice_and_local)
    assert [c.title for c in store.list_conversations("alice@example.com")] == ["Alice private"]
    store.close()


def test_a_verified_alice_sees_her_data_and_never_the_pre_login_data(alice_and_local):
    at = logged_in(
        "app_pages/conversations.py",
        {"iss": ISSUER, "sub": "alice-1", "email": "Alice@Example.com", "email_verified": True},
    )
    shown = everything_shown(at)
    assert "Alice private" in shown and "Logged in as alice@example.com" in shown
    assert "Before login" not in shown


@pytest.mark.parametrize("page", ["app.py", "app_pages/conversations.py"])
def test_a_subject_named_local_never_sees_the_pre_login_data(alice_and_local, page):
    at = logged_in(page, {"iss": ISSUER, "sub": "local"})
    shown = everything_shown(at)
    assert "Before login" not in shown and "LOCAL-4242" not in shown


def test_claims_naming_no_one_show_a_sentence_and_no_data(alice_and_local):
    at = logged_in("app.py", {"sub": "local"})
    assert [plain(e.value) for e in at.error] == [
        "The identity provider sent neither a verified email nor an issuer and subject, "
        "so Memory Lab cannot tell whose data to show."
    ]
    shown = everything_shown(at)
    assert "Before login" not in shown and "Alice private" not in shown
    assert len(at.chat_input) == 0
