"""Bundled lessons: scripted conversations that ask a learner to predict what each memory type sends."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from .config import Limits
from .errors import InvalidInput
from .memory import MEMORY_TYPES
from .recall_check import contains_phrase, reached, score_reply
from .records import ChatMessage
from .replay import ScriptTurn, Survival, TypeReplay
from .validation import is_unicode, json_shape, message_text

MAX_LESSON_BYTES = 2_000_000
MAX_LESSON_DEPTH = 10  # a lesson nests 3 deep (lesson, turns, turn): checked before the schema recurses into it
MAX_LESSON_VALUES = 20_000  # a lesson of 200 turns holds about 1,000

MAX_ANSWERS = 10
MAX_REFERENCE_CHARS = 2_000
SCHEMA_FILE = "lesson.schema.json"
# The memory guide's ideas, in its order: what each bundled lesson teaches (a test checks every one has a lesson).
IDEAS = {
    "simple": "Simple memory: one session only",
    "buffer": "Conversation buffer memory",
    "custom": "Custom memory: your own keys",
    "window": "Memory with context: the last k turns",
    "persistent": "Persistent memory: there after a restart",
    "clear": "Best practice: clear memory when needed",
    "forget": "Best practice: forget what must go",
    "relevance": "Best practice: optimize for relevance",
    "size": "Best practice: control memory size",
    "consistency": "Best practice: ensure consistency",
}
QuestionKind = Literal["sends", "lost_at", "under_budget", "stale", "practice"]
PracticeCheck = Literal["survives_restart", "temporary_gone", "preference_saved", "memory_cleared", "message_forgotten"]


@dataclass(frozen=True)
class Question:
    """What the learner answers before the reveal; `kind` says how the replay (or the database) answers it.

    sends: at `at_turn`, which types still send `needle` from `fact_turn`. stale: which send it but not `update`.
    lost_at: at which turn `memory_type` stops sending it. under_budget: which types' request at `at_turn` is within
    `budget_tokens`. practice: which of `options` are right, checked by doing it in the app.
    """

    text: str
    fact_turn: int = 0
    needle: str = ""
    at_turn: int = 0
    kind: QuestionKind = "sends"
    memory_type: str = ""
    budget_tokens: int = 0
    update: str = ""
    options: tuple[str, ...] = ()
    correct: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReferenceSummary:
    """A summary written by hand for the lesson (no model made it), covering turns 1 to `through_turn`."""

    text: str
    through_turn: int


@dataclass(frozen=True)
class Practice:
    """Steps the learner does for real in the app (a restart, a second session, a clear), then checked."""

    steps: tuple[str, ...]
    check: PracticeCheck
    phrase: str = ""


@dataclass(frozen=True)
class Lesson:
    """One scenario, its question, its LangChain counterpart, and the explanation shown after the reveal."""

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
    idea: str = "buffer"
    order: int = 1000
    counterpart: str = ""  # the LangChain class or recipe a reader of the guide would use
    readme: str = ""  # the README heading that says how Memory Lab differs from it
    practice: Practice | None = None
    types: tuple[str, ...] = tuple(MEMORY_TYPES)  # what the reveal replays

    @property
    def replays(self) -> bool:
        """Whether the reveal replays the script (a practice lesson is checked in the database instead)."""
        return self.question.kind != "practice"


@cache
def _validator() -> Any:
    """The lesson schema's validator, where "integer" means a whole number as JSON wrote it: 4 yes; 4.0 (which the
    JSON Schema spec counts as an integer) and true no, since the lesson would hand Python a float or a bool."""
    import jsonschema

    schema = json.loads(resources.files("memstore").joinpath("data", SCHEMA_FILE).read_text("utf-8"))
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


def schema_errors(raw: object) -> list[str]:
    """Every way the data breaks the lesson schema, as 'where: what' sentences (the first few)."""
    errors = sorted(islice(_validator().iter_errors(raw), 100), key=lambda e: list(e.absolute_path))
    out = []
    for error in errors[:5]:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        out.append(f"{where}: {error.message[:300]}")
    return out


def _reference(slug: str, raw: object, turns: int) -> ReferenceSummary | None:
    """The hand-written summary, if any, for a turn that a later request can carry."""
    if raw is None:
        return None
    assert isinstance(raw, dict)  # the schema said so
    if not 1 <= raw["through_turn"] < turns:
        raise InvalidInput(
            f"Lesson {slug!r}: the reference summary's 'through_turn' must be a whole number from 1 "
            f"to {turns - 1} (a turn some later request still follows)."
        )
    return ReferenceSummary(raw["text"].strip(), raw["through_turn"])


def _lesson(slug: str, raw: dict) -> Lesson:
    json_shape(raw, max_depth=MAX_LESSON_DEPTH, max_values=MAX_LESSON_VALUES, what=f"Lesson {slug!r}")
    problems = schema_errors(raw)
    if problems:
        raise InvalidInput(f"Lesson {slug!r} does not follow the lesson schema: " + "; ".join(problems))
    turns = tuple(ScriptTurn(t["user"], t["assistant"]) for t in raw.get("turns", ()))
    q = raw["question"]
    question = Question(
        text=q["text"],
        fact_turn=q.get("fact_turn", 0),
        needle=q.get("needle", ""),
        at_turn=q.get("at_turn", 0),
        kind=q["kind"],
        memory_type=q.get("memory_type", ""),
        budget_tokens=q.get("budget_tokens", 0),
        update=q.get("update", ""),
        options=tuple(q.get("options", ())),
        correct=tuple(q.get("correct", ())),
    )
    settings = raw.get("settings", {})
    practice = raw.get("practice")
    lesson = Lesson(
        slug=slug,
        title=raw["title"],
        goal=raw["goal"],
        turns=turns,
        question=question,
        explanation=raw["explanation"],
        window_turns=settings.get("window_turns", 3),
        max_tokens=settings.get("max_tokens", 150),
        preferences=tuple((p["key"], p["value"]) for p in raw.get("preferences", ())),
        answers=tuple(a.strip() for a in raw.get("answers", ())) or ((question.needle,) if question.needle else ()),
        reference_summary=_reference(slug, raw.get("reference_summary"), len(turns)),
        idea=raw["idea"],
        order=raw["order"],
        counterpart=raw["langchain"]["counterpart"],
        readme=raw["langchain"]["readme"],
        practice=Practice(tuple(practice["steps"]), practice["check"], practice.get("phrase", ""))
        if practice
        else None,
        types=tuple(raw.get("types", MEMORY_TYPES)),
    )
    _check_question(lesson)
    return lesson


def _check_question(lesson: Lesson) -> None:
    """What the schema cannot say: the turns a question names exist, and its answer is not given away."""
    q, slug, n = lesson.question, lesson.slug, len(lesson.turns)
    if q.kind == "practice":
        unknown = set(q.correct) - set(q.options)
        if unknown:
            raise InvalidInput(f"Lesson {slug!r}: the correct answers {sorted(unknown)} are not among the options.")
        return
    if q.kind == "under_budget":
        if not 1 <= q.at_turn <= n:
            raise InvalidInput(f"Lesson {slug!r} asks about turn {q.at_turn}; its script has {n} turns.")
        return
    if q.kind == "lost_at":
        if q.memory_type not in lesson.types:
            raise InvalidInput(f"Lesson {slug!r}: there is no memory type {q.memory_type!r}.")
        if not 1 <= q.fact_turn < n:
            raise InvalidInput(f"Lesson {slug!r} asks about turns outside its script.")
        return
    if not 1 <= q.fact_turn < q.at_turn <= n:
        raise InvalidInput(f"Lesson {slug!r} asks about turns outside its script.")
    if contains_phrase(lesson.turns[q.at_turn - 1].user, q.needle):
        raise InvalidInput(
            f"Lesson {slug!r}: the message at turn {q.at_turn} already holds the fact, so "
            "every type would seem to send it."
        )


def parse_lesson(slug: str, text: str) -> Lesson:
    """One lesson file's text, validated against the schema and the script; a sentence names what is wrong."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"Lesson {slug!r} is not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    except RecursionError:  # the same sentence json_shape gives: a lesson needs 3 levels, so this is far past 10
        raise InvalidInput(f"Lesson {slug!r} nests its data more than {MAX_LESSON_DEPTH} levels deep.") from None
    except ValueError as exc:  # a number of over 4,300 digits, which Python refuses to read
        raise InvalidInput(f"Lesson {slug!r} is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"Lesson {slug!r} must be a JSON object.")
    return _lesson(slug, raw)


def lesson_text(raw: bytes) -> str:
    """A lesson file's text, or InvalidInput: too big to read, not UTF-8, or holding a NUL byte."""
    if len(raw) > MAX_LESSON_BYTES:
        raise InvalidInput(f"The file is {len(raw) / 1e6:.1f} MB; a lesson is at most {MAX_LESSON_BYTES / 1e6:.0f} MB.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("The file is not UTF-8 text.") from None
    if "\x00" in text:
        raise InvalidInput("The file contains a NUL byte.")
    return text


def parse_lesson_file(name: str, raw: bytes, limits: Limits = Limits()) -> Lesson:
    """A teacher's lesson file, uploaded: the same size and text checks as a replay file, then the lesson's own."""
    text = lesson_text(raw)
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in name.removesuffix(".json"))[:60] or "lesson"
    lesson = parse_lesson(slug, text)
    for turn in lesson.turns:
        message_text(turn.user, limits)
        if not is_unicode(turn.assistant) or not is_unicode(turn.user):
            raise InvalidInput("The lesson holds characters that are not valid Unicode.")
    return lesson


@dataclass(frozen=True)
class Shelf:
    """The lessons of a folder that passed every check, and one sentence per file that did not."""

    lessons: tuple[Lesson, ...]
    problems: tuple[str, ...] = ()


def read_lessons(folder: Path | Traversable) -> Shelf:
    """Every lesson file in a folder, in the guide's order; a bad file is skipped with a sentence, never raised, so
    one broken file cannot take the Lessons page down."""
    lessons, problems = [], []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        try:
            try:
                raw = entry.read_bytes()
            except OSError:
                raise InvalidInput("it could not be read.") from None  # the error would name a server path
            lessons.append(parse_lesson(entry.name.removesuffix(".json"), lesson_text(raw)))
        except InvalidInput as exc:
            problems.append(f"The lesson file {entry.name} was skipped: {exc}")
    return Shelf(tuple(sorted(lessons, key=lambda lesson: (lesson.order, lesson.title))), tuple(problems))


@cache
def bundled_lessons() -> Shelf:
    """The lessons shipped in memstore/lessons, read and validated once per process (the Lessons and Compare pages
    ask on every rerun, and validating them all takes about 13 ms)."""
    return read_lessons(resources.files("memstore").joinpath("lessons"))


def load_lessons() -> tuple[Lesson, ...]:
    """Every bundled lesson that passed its checks, in the guide's order."""
    return bundled_lessons().lessons


README = Path(__file__).resolve().parent.parent / "README.md"


@cache
def readme_section(heading: str, readme: Path = README) -> str | None:
    """The README's text under a heading (to the next heading of the same or a higher level), or None."""
    try:
        lines = readme.read_text("utf-8").splitlines()
    except OSError:
        return None
    for i, line in enumerate(lines):
        level = len(line) - len(line.lstrip("#"))
        if 0 < level <= 4 and line[level:].strip() == heading:
            body = []
            for later in lines[i + 1 :]:
                depth = len(later) - len(later.lstrip("#"))
                if 0 < depth <= level and later[depth : depth + 1] == " ":
                    break
                body.append(later)
            return "\n".join(body).strip()
    return None


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
    if survival.status in ("kept", "recalled"):
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


@dataclass(frozen=True)
class Reveal:
    """What the replay (or the database) shows, per choice the learner had, and a sentence for a number answer."""

    grades: tuple[Grade, ...]
    answer_turn: int | None = None  # lost_at: the first turn the type no longer sends the fact (None: never)
    tokens: dict[str, int] = field(default_factory=dict)  # under_budget: each type's request at at_turn


def sends_at(result: TypeReplay, turn: int, needle: str) -> bool:
    """Whether one type's request at `turn` carries the text (verbatim anywhere in it, summaries included)."""
    return reached(result.frames[turn - 1].payload.messages, needle)


def lost_at(result: TypeReplay, fact_turn: int, needle: str) -> int | None:
    """The first turn after the fact at which this type's request no longer carries it; None if it never drops it."""
    for turn in range(fact_turn + 1, len(result.frames) + 1):
        if not sends_at(result, turn, needle):
            return turn
    return None


def reveal(lesson: Lesson, predicted: Sequence[str], results: Sequence[TypeReplay], survival=None) -> Reveal:
    """Grade a prediction for a replayed lesson, whatever its kind of question."""
    q = lesson.question
    if q.kind == "sends":
        assert survival is not None
        return Reveal(tuple(grade(predicted, survival, q.at_turn)))
    if q.kind == "stale":
        actual = {
            r.memory_type for r in results if sends_at(r, q.at_turn, q.needle) and not sends_at(r, q.at_turn, q.update)
        }
        return Reveal(_grades(predicted, actual, [r.memory_type for r in results]))
    if q.kind == "under_budget":
        tokens = {r.memory_type: r.frames[q.at_turn - 1].payload.total_tokens for r in results}
        actual = {t for t, n in tokens.items() if n <= q.budget_tokens}
        return Reveal(_grades(predicted, actual, list(tokens)), tokens=tokens)
    if q.kind == "lost_at":
        result = next(r for r in results if r.memory_type == q.memory_type)
        answer = lost_at(result, q.fact_turn, q.needle)
        said = predicted[0] if predicted else ""
        truth = str(answer) if answer is not None else "never"
        return Reveal((Grade(q.memory_type, said == truth, True),), answer_turn=answer)
    raise InvalidInput(f"A {q.kind} question is answered in the app, not by a replay.")


def practice_grades(lesson: Lesson, predicted: Sequence[str]) -> tuple[Grade, ...]:
    """A practice lesson's options: which the learner chose against which are right."""
    return _grades(predicted, set(lesson.question.correct), list(lesson.question.options))


def _grades(predicted: Sequence[str], actual: set[str], choices: Sequence[str]) -> tuple[Grade, ...]:
    chosen = set(predicted)
    return tuple(Grade(c, c in chosen, c in actual) for c in choices)
