"""What one ChatGPT file may make the app hold: a message, a conversation, the file; and ids and kinds it repeats.

Issue 24: a 131 KB zip holding one 128 MB reply took 46 s to preview, 240 s and 6.5 GB to import, and stored the
reply; a 1 GB string in a 1 MB zip had not finished its preview after 500 s. Each test here fails on that code.
"""

from __future__ import annotations

import io
import json
import random
import struct
import tracemalloc
import zipfile

import ijson
import pytest

from memstore import InvalidInput, Limits, SqlStore
from memstore.importers import ChatGPTExport, import_source, json_guard, preview_source
from memstore.importers import chatgpt as chatgpt_module
from memstore.importers.common import describe_left_out
from memstore.tokens import counter_for_model
from sources import chatgpt_conversation

ME = "alice"
COUNTER = counter_for_model("gpt-4o-mini")


def bomb_zip(reply_mb: int) -> bytes:
    """A ChatGPT export zip (deflated) whose first conversation has a reply of `reply_mb` MB, and a fine one after."""
    bomb = chatgpt_conversation("Bomb", [("hi", "@@")], conversation_id="c-bomb")
    fine = chatgpt_conversation("Fine", [("hello", "there")], conversation_id="c-fine")
    head, tail = json.dumps([bomb, fine]).encode().split(b"@@")
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("conversations.json", "w", force_zip64=True) as member,
    ):
        member.write(head)
        block = b"A" * 1_000_000
        for _ in range(reply_mb):
            member.write(block)
        member.write(tail)
    return buffer.getvalue()


def stored_messages(store) -> list[tuple[str, str]]:
    return [(m.role, m.content) for c in store.list_conversations(ME) for m in store.page(ME, c.id, limit=500)]


def test_a_long_reply_in_a_small_zip_is_read_no_further(sql_store):
    """32 MB of reply in a 32 KB zip: the preview says why in one sentence, holds little, and the rest imports."""
    data = bomb_zip(32)
    assert len(data) < 100_000
    tracemalloc.start()
    lines = list(preview_source(ChatGPTExport(data=data, name="export.zip"), sql_store, ME))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [line.title for line in lines] == ["Bomb", "Fine"]
    assert lines[0].problem == (
        "message 2 is longer than 32,000 characters (the limit, MEMORYLAB_MAX_MESSAGE_CHARS), so it was read no further"
    )
    assert lines[1].importable
    assert peak < 10_000_000, f"the preview held {peak / 1e6:.0f} MB"

    result = import_source(sql_store, ME, ChatGPTExport(data=data, name="export.zip"), COUNTER)
    assert [c.title for c in result.created] == ["Fine"]
    assert "1 that cannot be imported was skipped (“Bomb”: message 2 is longer than 32,000" in result.sentence()
    assert stored_messages(sql_store) == [("user", "hello"), ("assistant", "there")]


def test_a_reply_over_the_limit_is_refused_and_the_limit_is_the_one_setting(tmp_path, sql_store):
    """40,000 characters is short in bytes (never cut) but over 32,000: refused; with the setting at 100,000, kept."""
    reply = "word " * 8_000
    export = [chatgpt_conversation("Long", [("hi", reply)], conversation_id="c-long")]
    data = json.dumps(export).encode()
    line = next(preview_source(ChatGPTExport(data=data), sql_store, ME))
    assert line.problem == "message 2 is 40,000 characters; the limit is 32,000"
    assert import_source(sql_store, ME, ChatGPTExport(data=data), COUNTER).created == []

    roomy = Limits(max_message_chars=100_000)  # MEMORYLAB_MAX_MESSAGE_CHARS=100000: the store and the reader
    store = SqlStore.open(f"sqlite:///{tmp_path / 'roomy.db'}", limits=roomy)
    try:
        result = import_source(store, ME, ChatGPTExport(data=data, limits=roomy), COUNTER)
        assert stored_messages(store) == [("user", "hi"), ("assistant", reply)]
        assert len(result.created) == 1
    finally:
        store.close()


def test_a_lower_setting_cuts_earlier(sql_store):
    """The cut follows MEMORYLAB_MAX_MESSAGE_CHARS: at 1,000 characters, a 1 MB reply is read no further."""
    data = json.dumps([chatgpt_conversation("c", [("hi", "x" * 1_000_000)], conversation_id="c")]).encode()
    limits = Limits(max_message_chars=1_000)
    line = next(preview_source(ChatGPTExport(data=data, limits=limits), sql_store, ME, limits))
    assert line.problem is not None and "longer than 1,000 characters" in line.problem


def test_an_export_over_the_size_cap_is_refused_in_one_sentence(sql_store):
    """The cap is on the JSON read (a zip's own size says nothing): both a plain file and a zip's member."""
    conversations = [chatgpt_conversation(f"c{n}", [("q " * 5_000, "a")], conversation_id=f"c{n}") for n in range(120)]
    raw = json.dumps(conversations).encode()
    assert len(raw) > 1_000_000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversations.json", raw)
    for data in (raw, buffer.getvalue()):
        with pytest.raises(InvalidInput, match=r"more than 1 MB of JSON \(once unzipped\).*nothing was imported"):
            source = ChatGPTExport(data=data, max_bytes=1_000_000)
            import_source(sql_store, ME, source, COUNTER)
    assert sql_store.list_conversations(ME) == []


def test_a_zip_that_understates_its_member_is_read_no_further_than_it_says(sql_store):
    """The zip says 100 bytes for 120 KB: no more than that is read, and the mismatch is one sentence."""
    raw = json.dumps([chatgpt_conversation("c", [("q " * 30_000, "a")], conversation_id="c")]).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversations.json", raw)
    data = bytearray(buffer.getvalue())
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = struct.pack("<I", 100)  # the uncompressed size the central directory gives
    with pytest.raises(InvalidInput, match="nothing was imported|not valid JSON|damaged|cannot be read"):
        import_source(sql_store, ME, ChatGPTExport(data=bytes(data)), COUNTER)
    assert sql_store.list_conversations(ME) == []


def test_the_byte_counter_raises_past_its_cap_whatever_the_stream_claims():
    reader = json_guard.BoundedReader(io.BytesIO(b"x" * 1_000), 600, "too big", lambda: None)
    assert len(reader.read(500)) == 500
    with pytest.raises(InvalidInput, match="too big"):
        reader.read(500)


@pytest.mark.parametrize(
    "cap, make, sentence",
    [
        (
            "MAX_CONVERSATION_MESSAGES",
            lambda: chatgpt_conversation("Big", [("q", "a")] * 40, conversation_id="c-big"),
            "it has more than 50 messages, so it was read no further",
        ),
        (
            "MAX_CONVERSATION_CHARS",
            lambda: chatgpt_conversation("Big", [("q" * 20_000, "a" * 20_000)] * 3, conversation_id="c-big"),
            "it holds more than 100,000 characters, so it was read no further",
        ),
    ],
)
def test_a_conversation_over_its_caps_is_let_go_and_the_rest_imports(monkeypatch, sql_store, cap, make, sentence):
    monkeypatch.setattr(chatgpt_module, cap, 50 if cap == "MAX_CONVERSATION_MESSAGES" else 100_000)
    export = [make(), chatgpt_conversation("Fine", [("hello", "there")], conversation_id="c-fine")]
    data = json.dumps(export).encode()
    lines = list(preview_source(ChatGPTExport(data=data), sql_store, ME))
    assert [(line.key, line.title, line.problem) for line in lines] == [
        ("c-big", "Big", sentence),  # its id comes after its messages in the file, and is still known
        ("c-fine", "Fine", None),
    ]
    result = import_source(sql_store, ME, ChatGPTExport(data=data), COUNTER)
    assert [c.title for c in result.created] == ["Fine"]


def test_a_bare_value_thousands_of_characters_long_is_refused(sql_store):
    data = b'[{"title": "n", "mapping": {}, "create_time": ' + b"1" * 5_000_000 + b"}]"
    with pytest.raises(InvalidInput, match="a value of more than 1,000 characters outside quotes"):
        list(preview_source(ChatGPTExport(data=data), sql_store, ME))


def test_two_conversations_with_one_id_the_second_is_named_as_such(sql_store):
    """Not "imported before": the first imports; the second is marked, and the sentence says why."""
    export = [
        chatgpt_conversation("First", [("one", "1")], conversation_id="same"),
        chatgpt_conversation("Second", [("two", "2")], conversation_id="same"),
    ]
    data = json.dumps(export).encode()
    lines = list(preview_source(ChatGPTExport(data=data), sql_store, ME))
    assert [(line.title, line.problem, line.imported_as) for line in lines] == [
        ("First", None, None),
        ("Second", "its id is also conversation 1's in this file (that one is imported)", None),
    ]
    result = import_source(sql_store, ME, ChatGPTExport(data=data), COUNTER, keys={"same"})
    assert [c.title for c in result.created] == ["First"]
    assert result.already_imported == 0
    assert "imported before" not in result.sentence()
    assert "“Second”: its id is also conversation 1's in this file" in result.sentence()
    # Imported again: now the first was imported before, and the second is still the file's duplicate.
    again = import_source(sql_store, ME, ChatGPTExport(data=data), COUNTER)
    assert (again.created, again.already_imported, again.not_importable) == ([], 1, 1)


def test_the_import_sentence_names_a_few_kinds_and_counts_the_rest(sql_store):
    """3,040 kinds of content: the sentence names five and says how many more (it listed them all)."""
    export = []
    for n in range(160):
        extra = [
            {
                "node_id": f"k{n}-{k}",
                "parent": None,
                "role": "tool",
                "content": {"content_type": f"kind-{n}-{k}-" + "x" * 200, "text": "t"},
            }
            for k in range(19)
        ]
        export.append(chatgpt_conversation(f"c{n}", [("q", "a")], conversation_id=f"c{n}", extra=[]))
        conv = export[-1]
        for item in extra:  # unknown types, spliced into the active branch before its last reply
            conv["mapping"][item["node_id"]] = {
                "id": item["node_id"],
                "message": {"author": {"role": "alien"}, "content": item["content"]},
                "parent": "u0",
                "children": [],
            }
        chain = ["u0"] + [item["node_id"] for item in extra] + ["a0"]
        for parent, child in zip(chain, chain[1:], strict=False):
            conv["mapping"][child]["parent"] = parent
    data = json.dumps(export).encode()
    result = import_source(sql_store, ME, ChatGPTExport(data=data), COUNTER)
    assert len(result.created) == 160
    assert len(result.left_out) == 3_040
    sentence = result.sentence()
    assert sentence.count("message of unknown type") == 5
    assert "and 3,035 more kinds" in sentence
    assert len(sentence) < 1_000
    # A kind's name is cut to 60 characters, as the source names it.
    assert all(len(kind) < 120 for kind in result.left_out)


def test_describe_left_out_keeps_short_lists_whole():
    assert describe_left_out({"tool message": 2, "system message": 1}) == "1 × system message, 2 × tool message"
    many = {f"kind {n}": n for n in range(1, 9)}
    assert describe_left_out(many) == "8 × kind 8, 7 × kind 7, 6 × kind 6, 5 × kind 5, 4 × kind 4, and 3 more kinds"


def test_the_cutter_passes_json_unchanged_and_cuts_only_long_strings(monkeypatch):
    """Random JSON with quotes, escapes, emoji and chunk edges everywhere: parsed as before, or cut with the mark."""
    rng = random.Random(24)
    alphabet = ["a", '"', "\\", "é", "😀", "\n", " ", "1", "\u2028", "x" * 50]
    for _ in range(400):
        monkeypatch.setattr(json_guard, "CHUNK_BYTES", rng.randint(1, 64))
        monkeypatch.setattr(json_guard, "KEPT_BYTES", rng.randint(1, 40))
        strings = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(4)]
        value = {"s": strings, "n": [1.5, -2, True, None, 1.7e9], strings[0]: {"k": strings[1]}}
        raw = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        cap = rng.randint(1, 300)
        cutter = json_guard.LongStringCutter(json_guard.BoundedReader(io.BytesIO(raw), len(raw), "", lambda: None), cap)
        parsed = next(ijson.items(cutter, "", use_float=True))
        _same_or_cut(value, parsed, max(cap, json_guard.KEPT_BYTES))


def _same_or_cut(before, after, cap: int) -> None:
    if isinstance(before, str):
        if after.endswith(json_guard.CUT_MARK):
            assert len(json.dumps(before, ensure_ascii=False).encode()) - 2 > cap or len(json.dumps(before)) - 2 > cap
            assert before.startswith(after.removesuffix(json_guard.CUT_MARK))
        else:
            assert after == before
    elif isinstance(before, dict):
        assert len(after) == len(before)
        for (k1, v1), (k2, v2) in zip(before.items(), after.items(), strict=True):
            _same_or_cut(k1, k2, cap)
            _same_or_cut(v1, v2, cap)
    elif isinstance(before, list):
        assert len(after) == len(before)
        for v1, v2 in zip(before, after, strict=True):
            _same_or_cut(v1, v2, cap)
    else:
        assert after == before


def many_files_zip(path, files: int) -> None:
    """A ChatGPT export beside `files` empty files: zipfile would hold its whole directory in memory."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("conversations.json", "[]")
        for n in range(files):
            archive.writestr(f"{n}", b"")


@pytest.mark.parametrize("files", [1_200, 70_000])  # 70,000 is over 65,535: the count is in the zip64 record
def test_a_zip_listing_more_files_than_an_export_holds_is_refused_before_its_directory_is_read(tmp_path, files):
    path = tmp_path / "export.zip"
    many_files_zip(path, files)
    with pytest.raises(InvalidInput, match="more than 1,000 files"):
        ChatGPTExport(path=path, max_zip_entries=1_000)
    ChatGPTExport(path=path, max_zip_entries=files + 1)  # the same zip under a cap it fits is read


def test_a_zip_whose_end_record_understates_its_directory_is_refused(tmp_path):
    path = tmp_path / "export.zip"
    many_files_zip(path, 2_000)
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x05\x06")
    data[at + 8 : at + 12] = (1).to_bytes(2, "little") * 2  # "1 file", while the directory holds 2,001
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match="files"):
        ChatGPTExport(path=path, max_zip_entries=10)


def test_assistant_messages_joined_past_the_limit_skip_the_conversation_and_stay_bounded():
    """Each part under the limit, the reply they join into over it: skipped like one long reply, nothing stored."""
    from memstore.importers.common import SourceConversation, SourceMessage, plan

    limits = Limits(max_message_chars=1_000)
    parts = tuple(SourceMessage("assistant", "x" * 900, "ai") for _ in range(2_000))
    joined = SourceConversation("c", "joined", (SourceMessage("user", "hello", "human"), *parts))
    planned = plan(joined, limits)
    assert planned.problem is not None and "joins the reply before it" in planned.problem
    assert max(len(text) for _, text, _ in planned.messages) <= 1_000  # never joined past the limit
