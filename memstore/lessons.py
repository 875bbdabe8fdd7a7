"""Bundled lessons: scripted conversations that ask a learner to predict what each memory type sends."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Sequence

from .errors import InvalidInput
from .replay import ScriptTurn, Survival


@dataclass(frozen=True)
class Question:
    """'At turn `at_turn`, which types still send `needle` from turn `fact_turn`?'"""

    text: str
    fact_turn: int
    needle: str
    at_turn: int


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


def _lesson(slug: str, raw: dict) -> Lesson:
    try:
        turns = tuple(ScriptTurn(t["user"], t["assistant"]) for t in raw["turns"])
        q = raw["question"]
        question = Question(q["text"], int(q["fact_turn"]), q["needle"], int(q["at_turn"]))
        settings = raw.get("settings", {})
        lesson = Lesson(
            slug=slug, title=raw["title"], goal=raw["goal"], turns=turns, question=question,
            explanation=raw["explanation"], window_turns=int(settings.get("window_turns", 3)),
            max_tokens=int(settings.get("max_tokens", 150)),
            preferences=tuple((p["key"], p["value"]) for p in raw.get("preferences", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"Lesson {slug!r} is malformed: {exc}") from None
    if not 1 <= question.fact_turn < question.at_turn <= len(turns):
        raise InvalidInput(f"Lesson {slug!r} asks about turns outside its script.")
    return lesson


def load_lessons() -> list[Lesson]:
    """Every lesson shipped in memstore/lessons, in title order."""
    folder = resources.files("memstore").joinpath("lessons")
    lessons = [
        _lesson(entry.name.removesuffix(".json"), json.loads(entry.read_text("utf-8")))
        for entry in folder.iterdir() if entry.name.endswith(".json")
    ]
    return sorted(lessons, key=lambda lesson: lesson.title)


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
