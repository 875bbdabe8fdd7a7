"""Bundled lessons: scripted conversations that ask a learner to predict what each memory type sends."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

from .errors import InvalidInput
from .recall_check import contains_phrase, reached, score_reply
from .records import ChatMessage
from .replay import ScriptTurn, Survival

MAX_ANSWERS = 10
MAX_REFERENCE_CHARS = 2_000


@dataclass(frozen=True)
class Question:
    """'At turn `at_turn`, which types still send `needle` from turn `fact_turn`?'"""

    text: str
    fact_turn: int
    needle: str
    at_turn: int


@dataclass(frozen=True)
class ReferenceSummary:
    """A summary written by hand for the lesson (no model made it), covering turns 1 to `through_turn`."""

    text: str
    through_turn: int


@dataclass(frozen=True)
class Lesson:
    """One bundled scenario, its question, and the explanation shown after the reveal."""

    slug: str
    title: str
    goal: str
    turns: tuple[ScriptTurn, ...]
    question: Question
    explanation: str
    window_turns: int = 3
    max_tokens: int = 150
    preferences: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    answers: tuple[str, ...] = ()  # acceptable answers to the question; the needle when the file gives none
    reference_summary: ReferenceSummary | None = None


def _answers(slug: str, raw: object, needle: str) -> tuple[str, ...]:
    """The lesson's acceptable answers: non-empty strings, a few at most; the needle by default."""
    if raw is None:
        return (needle,)
    if not isinstance(raw, list) or not raw or len(raw) > MAX_ANSWERS:
        raise InvalidInput(f"Lesson {slug!r}: 'answers' must be a list of 1 to {MAX_ANSWERS} strings.")
    if not all(isinstance(a, str) and a.strip() for a in raw):
        raise InvalidInput(f"Lesson {slug!r}: every answer must be a non-empty string.")
    return tuple(a.strip() for a in raw)


def _reference(slug: str, raw: object, turns: int) -> ReferenceSummary | None:
    """The hand-written summary, if any: text, and a turn it summarizes through that a later request can carry."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str) or not raw["text"].strip():
        raise InvalidInput(f"Lesson {slug!r}: 'reference_summary' needs a non-empty 'text'.")
    if len(raw["text"]) > MAX_REFERENCE_CHARS:
        raise InvalidInput(f"Lesson {slug!r}: the reference summary is over {MAX_REFERENCE_CHARS:,} characters.")
    through = raw.get("through_turn")
    if isinstance(through, bool) or not isinstance(through, int) or not 1 <= through < turns:
        raise InvalidInput(
            f"Lesson {slug!r}: the reference summary's 'through_turn' must be a whole number from 1 "
            f"to {turns - 1} (a turn some later request still follows)."
        )
    return ReferenceSummary(raw["text"].strip(), through)


def _lesson(slug: str, raw: dict) -> Lesson:
    try:
        turns = tuple(ScriptTurn(t["user"], t["assistant"]) for t in raw["turns"])
        q = raw["question"]
        question = Question(q["text"], int(q["fact_turn"]), q["needle"], int(q["at_turn"]))
        settings = raw.get("settings", {})
        lesson = Lesson(
            slug=slug,
            title=raw["title"],
            goal=raw["goal"],
            turns=turns,
            question=question,
            explanation=raw["explanation"],
            window_turns=int(settings.get("window_turns", 3)),
            max_tokens=int(settings.get("max_tokens", 150)),
            preferences=tuple((p["key"], p["value"]) for p in raw.get("preferences", ())),
            answers=_answers(slug, raw.get("answers"), str(q["needle"])),
            reference_summary=_reference(slug, raw.get("reference_summary"), len(turns)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"Lesson {slug!r} is malformed: {exc}") from None
    if not 1 <= question.fact_turn < question.at_turn <= len(turns):
        raise InvalidInput(f"Lesson {slug!r} asks about turns outside its script.")
    if contains_phrase(turns[question.at_turn - 1].user, question.needle):
        raise InvalidInput(
            f"Lesson {slug!r}: the message at turn {question.at_turn} already holds the fact, so "
            "every type would seem to send it."
        )
    return lesson


def parse_lesson(slug: str, text: str) -> Lesson:
    """One lesson file's text, validated; a sentence names what is wrong."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"Lesson {slug!r} is not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"Lesson {slug!r} must be a JSON object.")
    return _lesson(slug, raw)


def load_lessons() -> list[Lesson]:
    """Every lesson shipped in memstore/lessons, in title order."""
    folder = resources.files("memstore").joinpath("lessons")
    lessons = [
        parse_lesson(entry.name.removesuffix(".json"), entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    ]
    return sorted(lessons, key=lambda lesson: lesson.title)


@dataclass(frozen=True)
class AnswerMark:
    """One type's answer to the lesson's question: did the fact reach the model, and did the reply use it."""

    memory_type: str
    reached: bool
    answered: bool
    reply: str
    error: str | None = None


def mark_answer(
    lesson: Lesson, memory_type: str, messages: Sequence[ChatMessage], reply: str, error: str | None = None
) -> AnswerMark:
    """Score a reply to the lesson's question against the exact request that type sent."""
    return AnswerMark(
        memory_type, reached(messages, lesson.question.needle), score_reply(reply, lesson.answers), reply, error
    )


def sends_fact_at(survival: Survival, at_turn: int) -> bool:
    """Whether a type's request at `at_turn` still carries the fact (verbatim, or in a summary that mentions it)."""
    if survival.status == "kept":
        return True
    if survival.last_verbatim_turn is not None and at_turn <= survival.last_verbatim_turn:
        return True
    return survival.status == "folded" and bool(survival.summary_mentions)


@dataclass(frozen=True)
class Grade:
    """A learner's prediction for one type against what the replay showed."""

    memory_type: str
    predicted: bool
    actual: bool

    @property
    def correct(self) -> bool:
        return self.predicted == self.actual


def grade(predicted: Sequence[str], survival: Sequence[Survival], at_turn: int) -> list[Grade]:
    """Compare the set of types the learner predicted to still send the fact with the replay."""
    chosen = set(predicted)
    return [Grade(s.memory_type, s.memory_type in chosen, sends_fact_at(s, at_turn)) for s in survival]
