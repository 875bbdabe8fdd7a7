"""A recall check: does a fact reach the model under each memory type, and does the answer use it?

Each case of a recall set states a fact (in the chat, as a preference or as a session fact), replays
filler turns whose replies are scripted, then asks a question whose answer is that fact. The question is
a real turn (`Chat.send`), so the model is called with exactly what the memory type sends; the request is
read back from the ledger. Scoring is two pure functions, `reached` and `score_reply`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from . import validation
from .chat import Chat
from .config import Limits
from .embeddings import Embedder
from .errors import InvalidInput
from .facts import FactSet, select_facts
from .llm import ChatClient
from .memory import MEMORY_TYPES
from .records import ChatMessage, MemorySettings, Preference
from .replay import ScriptTurn
from .schema import utcnow
from .sql_store import SqlStore

RECALL_SET_FORMAT = "memorylab.recall_set/1"
FactKind = Literal["chat", "preference", "session"]
FACT_KINDS: tuple[FactKind, ...] = ("chat", "preference", "session")
KIND_LABELS = {"chat": "in the chat", "preference": "a preference", "session": "a session fact"}
ANSWER_PARAMS = {"temperature": 0.0, "max_tokens": 64}  # greedy: the same request gets the same answer
MAX_CASES = 200
MAX_TURNS_PER_CASE = 20
MAX_ANSWERS = 10
RECALL_USER = "recall-check"

Outcome = Literal["used", "unused", "guessed", "missing"]


# -- scoring (pure) -------------------------------------------------------------------------------


def _normalized(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").casefold()


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `text` as whole words, ignoring case and runs of spaces ('Biscuit' not 'Biscuits')."""
    words = _normalized(phrase).split()
    if not words:
        return False
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"
    return re.search(pattern, _normalized(text)) is not None


def score_reply(reply: str, expected: Sequence[str]) -> bool:
    """Whether a reply contains any acceptable answer."""
    return any(contains_phrase(reply, answer) for answer in expected)


def reached(messages: Sequence[ChatMessage], needle: str) -> bool:
    """Whether the fact's needle is anywhere in the exact messages sent to the model."""
    return any(contains_phrase(m.content, needle) for m in messages)


def outcome(fact_reached: bool, answered: bool) -> Outcome:
    """used: had it and said it; unused: had it, did not say it; guessed: said it without having it; missing."""
    if fact_reached:
        return "used" if answered else "unused"
    return "guessed" if answered else "missing"


# -- the set ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecallCase:
    """One fact, the turns that bury it, and the question that needs it."""

    case_id: str
    kind: FactKind
    turns: tuple[ScriptTurn, ...]
    question: str
    answers: tuple[str, ...]
    needle: str
    fact_turn: int | None = None  # kind "chat": the turn whose message states the fact
    fact_key: str | None = None  # kinds "preference" and "session": the stored fact
    fact_value: str | None = None

    def facts(self) -> FactSet:
        """The facts injected into the system prompt for this case (none for a fact said in the chat)."""
        if self.kind == "preference":
            return select_facts({}, [Preference(str(self.fact_key), str(self.fact_value), True, utcnow())])
        if self.kind == "session":
            return select_facts({str(self.fact_key): str(self.fact_value)}, [])
        return FactSet()


@dataclass(frozen=True)
class RecallSet:
    """The cases, and the small memory sizes they run at (so windows visibly forget)."""

    cases: tuple[RecallCase, ...]
    window_turns: int = 2
    max_tokens: int = 150
    recall_turns: int = 1

    def settings(self, memory_type: str) -> MemorySettings:
        return MemorySettings(
            memory_type, window_turns=self.window_turns, max_tokens=self.max_tokens, recall_turns=self.recall_turns
        )


def _whole(raw: dict, name: str, default: int, low: int, where: str) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInput(f"{where}: {name!r} must be a whole number of at least {low}.")
    return value


def _text(raw: dict, name: str, where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where}: {name!r} must be non-empty text.")
    return value.strip()


def _case(raw: object, index: int, limits: Limits) -> RecallCase:
    where = f"Recall case {index}"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be a JSON object.")
    case_id = _text(raw, "id", where)
    where = f"Recall case {case_id!r}"
    kind = raw.get("kind")
    if kind not in FACT_KINDS:
        raise InvalidInput(f"{where}: 'kind' must be one of {', '.join(FACT_KINDS)}.")
    turns_raw = raw.get("turns")
    if not isinstance(turns_raw, list) or not 1 <= len(turns_raw) <= MAX_TURNS_PER_CASE:
        raise InvalidInput(f"{where}: 'turns' must be a list of 1 to {MAX_TURNS_PER_CASE} turns.")
    turns = []
    for number, turn in enumerate(turns_raw, 1):
        if not isinstance(turn, dict):
            raise InvalidInput(f"{where}: turn {number} must be an object with 'user' and 'assistant'.")
        turns.append(
            ScriptTurn(
                validation.message_text(_text(turn, "user", f"{where}, turn {number}"), limits),
                _text(turn, "assistant", f"{where}, turn {number}"),
            )
        )
    question = validation.message_text(_text(raw, "question", where), limits)
    answers_raw = raw.get("answers")
    if (
        not isinstance(answers_raw, list)
        or not 1 <= len(answers_raw) <= MAX_ANSWERS
        or not all(isinstance(a, str) and a.strip() for a in answers_raw)
    ):
        raise InvalidInput(f"{where}: 'answers' must be a list of 1 to {MAX_ANSWERS} non-empty strings.")
    answers = tuple(a.strip() for a in answers_raw)
    needle = _text(raw, "needle", where)
    if contains_phrase(question, needle) or score_reply(question, answers):
        raise InvalidInput(f"{where}: the question already holds the fact or its answer, so it would always be found.")
    fact_turn = fact_key = fact_value = None
    if kind == "chat":
        fact_turn = raw.get("fact_turn")
        if isinstance(fact_turn, bool) or not isinstance(fact_turn, int) or not 1 <= fact_turn <= len(turns):
            raise InvalidInput(f"{where}: 'fact_turn' must be a turn of its script (1 to {len(turns)}).")
        if not contains_phrase(turns[fact_turn - 1].user, needle):
            raise InvalidInput(f"{where}: the message of turn {fact_turn} does not contain the needle {needle!r}.")
        others = [
            n
            for n, t in enumerate(turns, 1)
            if n != fact_turn and reached((ChatMessage("user", t.user), ChatMessage("assistant", t.assistant)), needle)
        ]
    else:
        fact = raw.get("fact")
        if not isinstance(fact, dict):
            raise InvalidInput(f"{where}: a {kind} case needs a 'fact' with 'key' and 'value'.")
        fact_key = validation.fact_key(fact.get("key"), limits)
        fact_value = validation.fact_value(fact.get("value"), limits)
        if not contains_phrase(fact_value, needle):
            raise InvalidInput(f"{where}: the fact's value does not contain the needle {needle!r}.")
        others = [
            n
            for n, t in enumerate(turns, 1)
            if reached((ChatMessage("user", t.user), ChatMessage("assistant", t.assistant)), needle)
        ]
    if others:
        raise InvalidInput(
            f"{where}: turn {others[0]} also contains the needle {needle!r}, so reaching the model "
            "would not show the fact survived."
        )
    return RecallCase(case_id, kind, tuple(turns), question, answers, needle, fact_turn, fact_key, fact_value)


def parse_recall_set(text: str, limits: Limits = Limits()) -> RecallSet:
    """A recall set file's text, validated; each problem is refused with a sentence that names the case."""
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"The recall set is not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    if not isinstance(raw, dict) or raw.get("format") != RECALL_SET_FORMAT:
        raise InvalidInput(f'The recall set must be a JSON object with "format": {RECALL_SET_FORMAT!r}.')
    settings = raw.get("settings", {})
    if not isinstance(settings, dict):
        raise InvalidInput("The recall set's 'settings' must be an object.")
    cases_raw = raw.get("cases")
    if not isinstance(cases_raw, list) or not 1 <= len(cases_raw) <= MAX_CASES:
        raise InvalidInput(f"The recall set needs 'cases': a list of 1 to {MAX_CASES} cases.")
    cases = tuple(_case(c, i, limits) for i, c in enumerate(cases_raw, 1))
    seen: set[str] = set()
    for case in cases:
        if case.case_id in seen:
            raise InvalidInput(f"Two recall cases are called {case.case_id!r}; every id must be unique.")
        seen.add(case.case_id)
    return RecallSet(
        cases,
        window_turns=_whole(settings, "window_turns", 2, 0, "The recall set's settings"),
        max_tokens=_whole(settings, "max_tokens", 150, 1, "The recall set's settings"),
        recall_turns=_whole(settings, "recall_turns", 1, 1, "The recall set's settings"),
    )


def bundled_recall_set() -> RecallSet:
    """The recall set shipped in memstore/data/recall_set.json."""
    return parse_recall_set(resources.files("memstore").joinpath("data", "recall_set.json").read_text("utf-8"))


# -- running --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """One case under one memory type: what was sent, what came back, and the two marks."""

    case_id: str
    kind: FactKind
    memory_type: str
    reached: bool
    answered: bool
    reply: str
    error: str | None
    prompt_tokens: int
    answer_ms: float  # the question's model call
    elapsed_ms: float  # the whole case: replayed turns (with their memory calls) and the question

    @property
    def outcome(self) -> Outcome:
        return outcome(self.reached, self.answered)


def run_case(
    case: RecallCase, memory_type: str, client: ChatClient, *, recall_set: RecallSet, embedder: Embedder | None = None
) -> CaseResult:
    """Replay the case's turns under one type in a throw-away store, then ask its question for real."""
    started = time.perf_counter()
    facts = case.facts()
    with SqlStore.in_memory() as scratch:
        chat = Chat(scratch, client, user_id=RECALL_USER, params=ANSWER_PARAMS, embedder=embedder)
        conv = chat.new_conversation(f"recall: {case.case_id}", recall_set.settings(memory_type))
        for turn in case.turns:
            chat.replay_turn(conv.id, turn.user, turn.assistant, facts)
            chat.after_turn(conv.id)
        result = chat.send(conv.id, case.question, facts).run()
        call = result.call if result.call is not None else chat.last_chat_call(conv.id)
    sent = call.request if call is not None else ()
    reply = result.reply.content
    return CaseResult(
        case_id=case.case_id,
        kind=case.kind,
        memory_type=memory_type,
        reached=reached(sent, case.needle),
        answered=score_reply(reply, case.answers),
        reply=reply,
        error=result.error.message if result.error is not None else None,
        prompt_tokens=(call.counted_prompt_tokens or 0) if call is not None else 0,
        answer_ms=(call.latency_ms or 0.0) if call is not None else 0.0,
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
    )


def run_recall(
    recall_set: RecallSet,
    client: ChatClient,
    *,
    memory_types: Iterable[str] | None = None,
    cases: Sequence[RecallCase] | None = None,
    embedder: Embedder | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Every case under every memory type (all registered ones unless given); `on_result` after each."""
    types = list(memory_types) if memory_types is not None else list(MEMORY_TYPES)
    unknown = [t for t in types if t not in MEMORY_TYPES]
    if unknown:
        raise InvalidInput(f"Unknown memory type {unknown[0]!r}; choose from {', '.join(MEMORY_TYPES)}.")
    results = []
    for case in cases if cases is not None else recall_set.cases:
        for memory_type in types:
            result = run_case(case, memory_type, client, recall_set=recall_set, embedder=embedder)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


@dataclass(frozen=True)
class Tally:
    """Counts over a group of results (one memory type, or one kind of fact)."""

    label: str
    total_count: int
    reached_count: int
    answered_count: int
    unused_count: int  # had the fact and did not use it
    guessed_count: int  # said it without having it
    elapsed_s: float


def tally(results: Sequence[CaseResult], key: Callable[[CaseResult], str]) -> list[Tally]:
    """Results grouped by `key` (in first-seen order), counted."""
    groups: dict[str, list[CaseResult]] = {}
    for result in results:
        groups.setdefault(key(result), []).append(result)
    return [
        Tally(
            label,
            len(group),
            sum(r.reached for r in group),
            sum(r.answered for r in group),
            sum(r.outcome == "unused" for r in group),
            sum(r.outcome == "guessed" for r in group),
            sum(r.elapsed_ms for r in group) / 1000.0,
        )
        for label, group in groups.items()
    ]
