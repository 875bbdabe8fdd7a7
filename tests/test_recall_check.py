"""The recall check: the bundled set, its validation, and scoring with scripted models (never a real one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import FakeClient
from memstore import MEMORY_TYPES, InvalidInput
from memstore.recall_check import (
    FACT_KINDS,
    RecallSet,
    bundled_recall_set,
    parse_recall_set,
    reached,
    run_case,
    run_recall,
    score_reply,
    tally,
)
from memstore.records import ChatMessage

ROOT = Path(__file__).resolve().parent.parent
SET_FILE = ROOT / "memstore" / "data" / "recall_set.json"


@pytest.fixture(scope="module")
def recall_set() -> RecallSet:
    return bundled_recall_set()


def case(recall_set: RecallSet, case_id: str):
    return next(c for c in recall_set.cases if c.case_id == case_id)


# -- scoring -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, expected, answered",
    [
        ("Your dog is called Biscuit.", ["Biscuit"], True),
        ("YOUR DOG IS BISCUIT!", ["Biscuit"], True),
        ("I love biscuits with tea.", ["Biscuit"], False),  # a longer word is not the answer
        ("You adopted a Border\n Collie.", ["border collie", "collie"], True),
        ("Your meeting is at 19:40.", ["09:40", "9:40"], False),
        ("I don't know your dog's name.", ["Biscuit"], False),
    ],
)
def test_a_reply_scores_answered_only_when_it_contains_an_acceptable_answer(reply, expected, answered):
    assert score_reply(reply, expected) is answered


def test_reached_reads_the_messages_that_were_sent():
    sent = [
        ChatMessage("system", "You are helpful.\n\nKnown facts about the user (from memory):\n- name: Oksana"),
        ChatMessage("user", "What is my name?"),
    ]
    assert reached(sent, "Oksana") and not reached(sent, "Biscuit")
    assert not reached([ChatMessage("user", "Oksanas")], "Oksana")


# -- the bundled set ---------------------------------------------------------------------------


def test_the_bundled_set_validates_and_covers_every_kind_of_fact(recall_set):
    assert 12 <= len(recall_set.cases) <= 16
    assert {c.kind for c in recall_set.cases} == set(FACT_KINDS)
    for c in recall_set.cases:
        if c.kind == "chat":
            assert c.fact_turn in (1, 2) and c.needle.lower() in c.turns[c.fact_turn - 1].user.lower()
        else:
            assert c.needle.lower() in c.fact_value.lower()
        assert len(c.turns) > recall_set.window_turns + 1  # the window has moved past turns 1 and 2


def broken(mutate) -> str:
    data = json.loads(SET_FILE.read_text("utf-8"))
    mutate(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    "mutate, sentence",
    [
        (lambda d: d.pop("format"), 'must be a JSON object with "format"'),
        (lambda d: d["cases"][0].update(needle="Rover"), "does not contain the needle 'Rover'"),
        (lambda d: d["cases"][0].update(question="Is my dog called Biscuit?"), "question already holds the fact"),
        (lambda d: d["cases"][0].update(answers=[]), "'answers' must be a list of 1 to"),
        (lambda d: d["cases"][0].update(kind="rumour"), "'kind' must be one of chat, preference, session"),
        (lambda d: d["cases"][0].update(fact_turn=9), "'fact_turn' must be a turn of its script"),
        (lambda d: d["cases"][1].update(id=d["cases"][0]["id"]), "every id must be unique"),
        (lambda d: d["cases"][0]["turns"][2].update(user="Biscuit ate my homework."), "also contains the needle"),
        (lambda d: d["cases"][-1].pop("fact"), "needs a 'fact' with 'key' and 'value'"),
        (lambda d: d["settings"].update(window_turns=-1), "'window_turns' must be a whole number"),
    ],
)
def test_a_malformed_set_is_refused_with_a_sentence(mutate, sentence):
    with pytest.raises(InvalidInput) as refused:
        parse_recall_set(broken(mutate))
    assert sentence in str(refused.value)


def test_a_file_that_is_not_json_is_refused_with_a_sentence():
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_recall_set("{cases: [")


# -- running the real code path with scripted models -------------------------------------------


def test_a_window_at_small_k_does_not_reach_a_chat_fact_from_turn_1_while_buffer_does(recall_set):
    dog = case(recall_set, "dog_name")
    assert dog.fact_turn == 1
    results = {
        t: run_case(dog, t, FakeClient(), recall_set=recall_set) for t in ("buffer", "window", "token_window", "none")
    }
    assert results["buffer"].reached
    assert not results["window"].reached and not results["token_window"].reached and not results["none"].reached


def test_a_preference_and_a_session_fact_reach_the_model_under_every_type(recall_set):
    for kind in ("preference", "session"):
        stored = next(c for c in recall_set.cases if c.kind == kind)
        results = run_recall(recall_set, FakeClient(), cases=[stored])
        assert [r.memory_type for r in results] == list(MEMORY_TYPES)
        assert all(r.reached for r in results), kind


def test_the_answer_is_scored_on_the_models_reply_and_the_fact_on_what_was_sent(recall_set):
    dog = case(recall_set, "dog_name")
    used = run_case(dog, "buffer", FakeClient(["You told me: his name is Biscuit."]), recall_set=recall_set)
    unused = run_case(dog, "buffer", FakeClient(["I'm not sure what your dog is called."]), recall_set=recall_set)
    guessed = run_case(dog, "window", FakeClient(["Is it Biscuit?"]), recall_set=recall_set)
    assert (used.reached, used.answered, used.outcome) == (True, True, "used")
    assert (unused.reached, unused.answered, unused.outcome) == (True, False, "unused")
    assert (guessed.reached, guessed.answered, guessed.outcome) == (False, True, "guessed")


def test_the_question_is_a_greedy_real_call_with_the_memorys_exact_request(recall_set):
    client = FakeClient()
    run_case(case(recall_set, "bike"), "window", client, recall_set=recall_set)
    question = client.chat_requests[-1]
    assert question[-1].content == "What brand is my bike?"
    assert client.params[-1]["temperature"] == 0.0
    assert len([m for m in question if m.role == "user"]) == recall_set.window_turns + 1  # k turns, then the question


def test_tally_counts_per_type_and_per_kind(recall_set):
    cases = [case(recall_set, "dog_name"), case(recall_set, "user_name")]
    results = run_recall(recall_set, FakeClient(), cases=cases, memory_types=["buffer", "window"])
    by_type = {t.label: t for t in tally(results, lambda r: r.memory_type)}
    assert (by_type["buffer"].reached_count, by_type["window"].reached_count) == (2, 1)
    assert by_type["window"].total_count == 2 and by_type["window"].answered_count == 0
    by_kind = {t.label: t for t in tally(results, lambda r: r.kind)}
    assert by_kind["preference"].reached_count == 2 and by_kind["chat"].reached_count == 1


def test_an_unknown_memory_type_is_refused(recall_set):
    with pytest.raises(InvalidInput, match="Unknown memory type 'forgetful'"):
        run_recall(recall_set, FakeClient(), memory_types=["forgetful"])


def test_the_bench_prints_both_marks_per_type_against_a_local_server(fake_server, tmp_path):
    out = tmp_path / "recall.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEMORYLAB_"))}
    env |= {
        "OPENAI_BASE_URL": fake_server.base_url,
        "OPENAI_MODEL": "test-model",
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_EMBEDDINGS_MODEL": "test-embeddings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "recall.py"), "--smoke", "--json", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "| memory type | fact reached the model | answer contained it |" in done.stdout
    rows = {line.split(" | ")[0].strip("| "): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert rows["buffer"].startswith("| buffer | 2/2 | 0/2 |")  # the echo server never says the answer
    assert rows["window"].startswith("| window | 1/2 | 0/2 |")  # only the preference is still sent
    assert "| a preference |" in done.stdout and "Run time" in done.stdout
    written = json.loads(out.read_text("utf-8"))
    assert len(written["results"]) == 2 * len(MEMORY_TYPES) and written["model"] == "test-model"
    assert all({"reached", "answered", "reply", "outcome"} <= set(r) for r in written["results"])
