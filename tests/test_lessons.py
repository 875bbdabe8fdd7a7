"""The lessons: one per idea of the memory guide, in its order; their schema, their reveal, their practice checks;
and the first-run tour."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import plain, run_page
from fakes import FakeClient
from memstore import InvalidInput, MemorySettings, Settings, SqlStore, client_from_settings
from memstore.embeddings import WordLlamaEmbedder
from memstore.facts import select_facts
from memstore.lessons import IDEAS, load_lessons, parse_lesson, parse_lesson_file, readme_section, reveal
from memstore.records import Preference
from memstore.replay import fact_survival, replay
from memstore.schema import utcnow
from sources import readme_example_lesson

ROOT = Path(__file__).resolve().parent.parent
LESSONS = {lesson.slug: lesson for lesson in load_lessons()}
REPLAYED = [s for s, lesson in LESSONS.items() if lesson.replays]
PRACTICE = [s for s, lesson in LESSONS.items() if not lesson.replays]


@pytest.fixture
def env(app_env, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return app_env, url


def test_each_idea_of_the_guide_has_a_lesson_in_the_guides_order():
    lessons = load_lessons()
    assert {lesson.idea for lesson in lessons} == set(IDEAS)
    positions = [list(IDEAS).index(lesson.idea) for lesson in lessons]
    assert positions == sorted(positions)  # the list follows the guide
    for lesson in lessons:
        assert lesson.counterpart, lesson.slug
        assert readme_section(lesson.readme), f"{lesson.slug}: the README has no section {lesson.readme!r}"


def test_the_readmes_example_lesson_loads_and_reveals():
    """A teacher can write a lesson from the README alone: its example passes every check and reveals."""
    lesson = parse_lesson_file("my_lesson.json", readme_example_lesson().encode())
    results = replay(
        lesson.turns[: lesson.question.at_turn],
        [MemorySettings(t, lesson.window_turns, lesson.max_tokens) for t in lesson.types],
        FakeClient(),
        user_id="u",
    )
    shown = reveal(lesson, ["buffer"], results, fact_survival(results, 1, "Lisbon"))
    assert {g.memory_type: g.actual for g in shown.grades} == {"buffer": True, "window": False, "token_window": True}


@pytest.mark.parametrize(
    "raw, sentence",
    [
        (b"x" * 2_000_001, "a lesson is at most 2 MB"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"title": "a\\u0000"}\x00', "NUL byte"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"title": "t"}', "does not follow the lesson schema: the top level: 'goal' is a required property"),
        (b"{" * 100_000, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nests its data more than 10 levels deep"),
    ],
)
def test_a_bad_lesson_file_gets_one_sentence(raw, sentence):
    with pytest.raises(InvalidInput, match=sentence):
        parse_lesson_file("mine.json", raw)


def test_a_lesson_that_gives_its_answer_away_or_names_missing_turns_is_refused():
    raw = json.loads((ROOT / "memstore/lessons/window_k3_allergy.json").read_text())
    raw["question"]["memory_type"] = "summary"  # not one of the types it replays
    with pytest.raises(InvalidInput, match="no memory type 'summary'"):
        parse_lesson("x", json.dumps(raw))
    raw = json.loads((ROOT / "memstore/lessons/clear_memory.json").read_text())
    raw["question"]["correct"] = ["Something else"]
    with pytest.raises(InvalidInput, match="not among the options"):
        parse_lesson("x", json.dumps(raw))
    raw = json.loads((ROOT / "memstore/lessons/clear_memory.json").read_text())
    del raw["practice"]
    with pytest.raises(InvalidInput, match="'practice' is a required property"):
        parse_lesson("x", json.dumps(raw))


def page_reveal(at):
    """The reveal table as the learner reads it: choice -> what it is."""
    frame = at.dataframe[0].value
    return dict(zip(frame[frame.columns[0]], frame["it is"]))


@pytest.mark.parametrize("slug", REPLAYED)
def test_each_replayed_lesson_loads_and_its_reveal_agrees_with_the_replay_engine(env, slug):
    _, url = env
    lesson = LESSONS[slug]
    q = lesson.question
    at = run_page("app_pages/lessons.py", timeout=120)
    at.selectbox(key="lesson_slug").set_value(slug).run()
    assert not at.exception
    assert plain(at.caption[1].value) == "LangChain counterpart: " + lesson.counterpart
    at.main.button[0].click().run()  # Reveal (nothing predicted)
    assert not at.exception, at.exception
    upto = q.at_turn if q.kind != "lost_at" else len(lesson.turns)
    facts = select_facts({}, [Preference(k, v, True, utcnow()) for k, v in lesson.preferences])
    with SqlStore.open(url) as store:
        results = replay(
            lesson.turns[:upto],
            [MemorySettings(t, lesson.window_turns, lesson.max_tokens) for t in lesson.types],
            client_from_settings(Settings.from_env()),
            user_id="local",
            facts=facts,
            cache=store,
            embedder=WordLlamaEmbedder(),
        )
    survival = fact_survival(results, q.fact_turn, q.needle) if q.kind == "sends" else None
    expected = reveal(lesson, [], results, survival)
    if q.kind == "lost_at":
        turn = expected.answer_turn
        assert turn is not None
        assert f"first leaves it out at turn {turn}" in at.subheader[1].value
    else:
        yes = {"sends": "sends it", "stale": "sends it", "under_budget": "within"}[q.kind]
        from memstore.lessons import Grade  # noqa: F401
        from ui.words import memory_label

        assert page_reveal(at) == {
            memory_label(g.memory_type): (yes if g.actual else {"within": "over"}.get(yes, "does not"))
            for g in expected.grades
        }
        assert {g.actual for g in expected.grades} == {True, False}, "the answer must differ by type"


def test_the_bundled_answers_are_the_ones_the_explanations_give():
    """What each explanation says, checked against the replay with the offline embedder."""

    def actual(slug):
        lesson = LESSONS[slug]
        q = lesson.question
        upto = q.at_turn if q.kind != "lost_at" else len(lesson.turns)
        facts = select_facts({}, [Preference(k, v, True, utcnow()) for k, v in lesson.preferences])
        results = replay(
            lesson.turns[:upto],
            [MemorySettings(t, lesson.window_turns, lesson.max_tokens) for t in lesson.types],
            FakeClient(),
            user_id="u",
            facts=facts,
            embedder=WordLlamaEmbedder(),
        )
        shown = reveal(lesson, [], results, fact_survival(results, q.fact_turn, q.needle))
        return shown, {g.memory_type for g in shown.grades if g.actual}

    assert actual("window_k3_allergy")[0].answer_turn == 5
    assert actual("relevance_retrieval")[1] == {"buffer", "retrieval"}
    assert actual("size_under_budget")[1] == {"none", "window", "token_window", "retrieval"}
    assert actual("consistency_moved")[1] == {"retrieval"}


def check(at, slug: str) -> str:
    at.selectbox(key="lesson_slug").set_value(slug).run()
    at.button(key=f"check_{slug}").click().run()
    assert not at.exception, at.exception
    return plain((at.success or at.warning)[0].value)


def seed_turn(url: str, text: str) -> tuple[SqlStore, int]:
    store = SqlStore.open(url)
    conv = store.create_conversation("local", "practice", MemorySettings("summary_buffer"))
    for n in range(2):
        msg = store.add_user_message("local", conv.id, f"{text} {n}", tokens=3, tokenizer="t")
        store.add_reply("local", conv.id, msg.turn, "ok", status="complete", tokens=1, tokenizer="t")
    return store, conv.id


def test_practice_lessons_check_what_was_done_in_the_app(env, monkeypatch):
    from ui import resources

    _, url = env
    at = run_page("app_pages/lessons.py", timeout=60)
    # Persistent memory: a saved message, then a restart.
    assert "No saved message holds" in check(at, "persistent_restart")
    store, conv = seed_turn(url, "My name is Ada")
    assert "written after this start: restart the app now" in check(at, "persistent_restart")
    monkeypatch.setattr(resources, "PROCESS_STARTED", datetime.now(UTC) + timedelta(seconds=1))  # a new process
    assert "it survived the restart" in check(at, "persistent_restart")
    grades = page_reveal(at)
    assert grades == {
        "A saved chat you told it in": "yes",
        "A temporary chat you told it in": "no",
        "A session fact you set in the sidebar": "no",
    }
    # Clear memory and forget a message: read back from the database.
    assert "No conversation has its memory cleared" in check(at, "clear_memory")
    store.clear_memory("local", conv)
    assert "memory reads start at turn 3, and its 4 messages are all still stored" in check(at, "clear_memory")
    assert "No message is forgotten yet" in check(at, "forget_a_message")
    first = store.page("local", conv)[0]
    store.forget_message("local", conv, first.id)
    assert "Turn 1 has a forgotten message" in check(at, "forget_a_message")
    store.close()


def test_a_saved_preference_is_checked_and_every_type_sends_it_at_turn_30(env):
    _, url = env
    at = run_page("app_pages/lessons.py", timeout=60)
    assert "No enabled preference mentions “vegetarian”" in check(at, "custom_keys")
    with SqlStore.open(url) as store:
        store.set_preference("local", "diet", "vegetarian")
    assert "“diet: vegetarian” is saved and switched on" in check(at, "custom_keys")
    # The lesson's answer, from the replay engine: every type it offers sends the preference at turn 30.
    from memstore.replay import ScriptTurn

    script = [ScriptTurn(f"Tell me about topic {n}.", f"Topic {n} is interesting.") for n in range(30)]
    facts = select_facts({}, [Preference("diet", "vegetarian", True, utcnow())])
    types = ["none", "window", "summary", "retrieval"]
    results = replay(
        script,
        [MemorySettings(t, 1, 100) for t in types],
        FakeClient(),
        user_id="u",
        facts=facts,
        embedder=WordLlamaEmbedder(),
    )
    assert all("vegetarian" in r.frames[-1].payload.messages[0].content for r in results)
    assert len(LESSONS["custom_keys"].question.correct) == len(types)


def test_simple_memory_is_checked_in_this_session_and_the_database(env):
    _, url = env
    at = run_page("app_pages/lessons.py", timeout=60)
    temporary = SqlStore.in_memory()
    conv = temporary.create_conversation("local", "temp", MemorySettings())
    temporary.add_user_message("local", conv.id, "My secret word is marmalade.", tokens=6, tokenizer="t")
    at.session_state["temporary_store"] = temporary  # the temporary chat of this browser session
    assert "still has the temporary chat: reload the page" in check(at, "simple_one_session")
    del at.session_state["temporary_store"]  # reloaded: a new session
    assert "the memory went with the session" in check(at, "simple_one_session")


# -- the first-run tour -----------------------------------------------------------------------------------------


def tour_text(at) -> str:
    return " ".join(m.value for m in at.markdown if "Tour " in m.value)


def test_the_tour_shows_once_on_a_fresh_database_and_never_after_it_is_dismissed(env):
    _, url = env
    at = run_page("app.py", timeout=60)
    assert "Tour 1 of 5" in tour_text(at) and "The chat" in tour_text(at)
    at.button(key="tour_next").click().run()
    assert "Tour 2 of 5" in tour_text(at) and "memory panel" in tour_text(at)
    at.button(key="tour_back").click().run()
    assert "Tour 1 of 5" in tour_text(at)
    for _ in range(4):
        at.button(key="tour_next").click().run()
    assert "Tour 5 of 5 · Compare" in tour_text(at)
    at.button(key="tour_done").click().run()
    assert tour_text(at) == "" and not at.exception
    again = run_page("app.py", timeout=60)  # another browser session, later
    assert tour_text(again) == ""
    with SqlStore.open(url) as store:
        assert store.has_flag("local", "tour_done")


def test_someone_with_conversations_before_the_tour_existed_is_not_shown_it(env):
    _, url = env
    seed_turn(url, "hello")[0].close()
    at = run_page("app.py", timeout=60)
    assert tour_text(at) == ""
