"""Replay one conversation through several memory types: what each sends at every turn.

The chat model is never called: each turn's reply is taken from the conversation. Memory types
and summaries run exactly as in a live chat (the same code), in throw-away temporary stores;
summary calls go to the summarizer, and a ledger passed as `cache` lets a replay reuse any
summary it has already paid for.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from .chat import Chat
from .config import Limits
from .embeddings import Embedder
from .errors import InvalidInput
from .facts import FactSet
from .llm import ChatClient
from .memory import group_turns
from .payload import Payload
from .records import MemorySettings, ModelCall
from .sql_store import SqlStore
from .store_api import TranscriptStore
from .summarizer import CallCache
from .tokens import CharEstimateCounter
from .transfer import iter_messages, read_json_file, settings_from_dict
from .validation import is_unicode, message_text, reply_text

MAX_REPLAY_TURNS = 200


@dataclass(frozen=True)
class ScriptTurn:
    """One turn to replay: what the user said and what the assistant answered."""

    user: str
    assistant: str


@dataclass(frozen=True)
class Frame:
    """One memory type at one turn: the exact request, and the summary calls made around it."""

    turn: int
    payload: Payload
    summary_calls: tuple[ModelCall, ...]
    cached_summaries: int
    reply_tokens: int

    @property
    def sent_turns(self) -> tuple[int, ...]:
        return tuple(t.number for t in self.payload.view.turns)

    @property
    def summary_text(self) -> str:
        summary = self.payload.view.summary
        return summary.text if summary is not None else ""

    @property
    def summary_tokens(self) -> int:
        """Prompt and completion tokens of this turn's summary calls, as counted here."""
        return sum((c.counted_prompt_tokens or 0) + (c.usage.completion_tokens or 0) for c in self.summary_calls)


@dataclass(frozen=True)
class TypeReplay:
    """Every frame of one memory type over the whole conversation."""

    settings: MemorySettings
    frames: tuple[Frame, ...]

    @property
    def memory_type(self) -> str:
        return self.settings.memory_type

    @property
    def prompt_tokens(self) -> int:
        return sum(f.payload.total_tokens for f in self.frames)

    @property
    def summary_calls(self) -> int:
        return sum(len(f.summary_calls) for f in self.frames)

    @property
    def summary_tokens(self) -> int:
        return sum(f.summary_tokens for f in self.frames)


def script_from_conversation(store: TranscriptStore, user_id: str, conversation_id: int) -> list[ScriptTurn]:
    """A saved conversation as turns to replay (the reply that counts per turn; at most 200 turns)."""
    messages = list(iter_messages(store, user_id, conversation_id))
    turns = group_turns(messages, CharEstimateCounter())
    script = [ScriptTurn(t.user.content, t.reply.content if t.reply else "") for t in turns if t.user is not None]
    return script[-MAX_REPLAY_TURNS:]


def replay(
    script: Sequence[ScriptTurn],
    settings: Sequence[MemorySettings],
    client: ChatClient,
    *,
    user_id: str,
    facts: FactSet = FactSet(),
    cache: CallCache | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    embedder: Embedder | None = None,
    limits: Limits = Limits(),
) -> list[TypeReplay]:
    """Replay `script` once per settings; `on_progress(done, total)` after every turn of every type."""
    total = len(script) * len(settings)
    done = 0
    results = []
    for setting in settings:
        with SqlStore.in_memory(limits=limits) as scratch:  # each type starts from an empty store of its own
            chat = Chat(scratch, client, user_id=user_id, summary_cache=cache, embedder=embedder)
            conv = chat.new_conversation("replay", setting)
            frames = []
            for number, turn in enumerate(script, 1):
                run = chat.replay_turn(conv.id, turn.user, turn.assistant, facts)
                after = chat.after_turn(conv.id)
                updates = [u for u in (*run.summary_updates, after.summary) if u is not None]
                entity_calls = (after.entities.call,) if after.entities is not None and after.entities.call else ()
                frames.append(
                    Frame(
                        turn=number,
                        payload=run.payload,
                        summary_calls=tuple(u.call for u in updates if u.call is not None) + entity_calls,
                        cached_summaries=sum(1 for u in updates if u.cached),
                        reply_tokens=chat.counter.count(turn.assistant),
                    )
                )
                done += 1
                if on_progress is not None:
                    on_progress(done, total)
        results.append(TypeReplay(setting, tuple(frames)))
    return results


# -- what a replay teaches ---------------------------------------------------------------------

SurvivalStatus = Literal["kept", "evicted", "folded", "recalled", "never_sent"]
_STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "is",
        "am",
        "are",
        "was",
        "were",
        "be",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "my",
        "your",
        "i",
        "you",
        "me",
        "it",
        "this",
        "that",
        "what",
        "which",
        "who",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "not",
        "no",
        "yes",
        "so",
        "as",
        "by",
        "from",
    ]
)


def needle_words(needle: str) -> list[str]:
    """The words that must appear for a text to 'still mention' a fact."""
    words = [w for w in re.findall(r"[\w']+", needle.lower()) if w not in _STOPWORDS]
    return words or re.findall(r"[\w']+", needle.lower())


def mentions(text: str, needle: str) -> bool:
    """Whether `text` still mentions every distinctive word of `needle` (case-insensitive)."""
    haystack = set(re.findall(r"[\w']+", text.lower()))
    return all(word in haystack for word in needle_words(needle))


@dataclass(frozen=True)
class Survival:
    """When a fact from one turn stops reaching the model, for one memory type."""

    memory_type: str
    status: SurvivalStatus
    last_verbatim_turn: int | None
    lost_at_turn: int | None
    summary_mentions: bool | None


def _recalled(frame: Frame, turn: int) -> bool:
    recall = frame.payload.view.recall
    return recall is not None and any(r.same_conversation and r.turn.number == turn for r in recall.recalled)


def fact_survival(replays: Sequence[TypeReplay], fact_turn: int, needle: str) -> list[Survival]:
    """For each type: kept to the end, evicted (and when), or folded into the summary (and still mentioned?)."""
    out = []
    for result in replays:
        later = [f for f in result.frames if f.turn > fact_turn]
        verbatim = [f.turn for f in later if fact_turn in f.sent_turns]
        lost = next((f.turn for f in later if fact_turn not in f.sent_turns), None)
        if not later:
            out.append(Survival(result.memory_type, "kept", None, None, None))
            continue
        if lost is None:
            out.append(Survival(result.memory_type, "kept", verbatim[-1], None, None))
            continue
        final = later[-1]
        summary = final.payload.view.summary
        folded = summary is not None and summary.from_turn <= fact_turn <= summary.through_turn
        if _recalled(final, fact_turn):  # out of the window, but brought back by meaning at the last turn
            out.append(Survival(result.memory_type, "recalled", verbatim[-1] if verbatim else None, lost, None))
        elif folded:
            out.append(
                Survival(
                    result.memory_type,
                    "folded",
                    verbatim[-1] if verbatim else None,
                    lost,
                    mentions(final.summary_text, needle),
                )
            )
        else:
            status: SurvivalStatus = "evicted" if verbatim else "never_sent"
            out.append(Survival(result.memory_type, status, verbatim[-1] if verbatim else None, lost, None))
    return out


@dataclass(frozen=True)
class FrameDiff:
    """What changed in one type's memory from one turn to the next."""

    entered: tuple[int, ...]
    left: tuple[int, ...]
    summary_ops: tuple[tuple[str, str], ...]
    facts_added: tuple[str, ...]
    facts_removed: tuple[str, ...]

    @property
    def summary_changed(self) -> bool:
        return any(op != "equal" for op, _ in self.summary_ops)


def word_diff(before: str, after: str) -> tuple[tuple[str, str], ...]:
    """A word-level diff as (op, text) pairs, op being equal, insert or delete."""
    a, b = before.split(), after.split()
    ops: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag in ("delete", "replace"):
            ops.append(("delete", " ".join(a[i1:i2])))
        if tag in ("insert", "replace"):
            ops.append(("insert", " ".join(b[j1:j2])))
        if tag == "equal":
            ops.append(("equal", " ".join(a[i1:i2])))
    return tuple(ops)


def diff_frames(before: Frame | None, after: Frame) -> FrameDiff:
    """Turns that entered and left the request, the summary's word diff, and fact changes."""
    old_turns = set(before.sent_turns) if before else set()
    new_turns = set(after.sent_turns)
    old_facts = {f"{f.key}: {f.value}" for f in before.payload.facts.injected} if before else set()
    new_facts = {f"{f.key}: {f.value}" for f in after.payload.facts.injected}
    return FrameDiff(
        entered=tuple(sorted(new_turns - old_turns)),
        left=tuple(sorted(old_turns - new_turns)),
        summary_ops=word_diff(before.summary_text if before else "", after.summary_text),
        facts_added=tuple(sorted(new_facts - old_facts)),
        facts_removed=tuple(sorted(old_facts - new_facts)),
    )


# -- exporting a replay (a lesson file) ----------------------------------------------------------

REPLAY_FORMAT = "memorylab.replay/1"
MAX_REPLAY_FILE_BYTES = 10 * 1024 * 1024


def export_replay(title: str, script: Sequence[ScriptTurn], results: Sequence[TypeReplay]) -> dict:
    """Every turn of every type: the exact request, tokens by section, memory state and the diff."""
    types = []
    for result in results:
        frames, before = [], None
        for frame in result.frames:
            diff = diff_frames(before, frame)
            summary = frame.payload.view.summary
            frames.append(
                {
                    "turn": frame.turn,
                    "tokens": frame.payload.total_tokens,
                    "sections": frame.payload.tokens_by_section(),
                    "messages": [m.as_dict() for m in frame.payload.messages],
                    "sent_turns": list(frame.sent_turns),
                    "dropped_turns": frame.payload.view.dropped_count,
                    "summary": None
                    if summary is None
                    else {"text": summary.text, "from_turn": summary.from_turn, "through_turn": summary.through_turn},
                    "summary_calls": [
                        {
                            "prompt_tokens": c.counted_prompt_tokens,
                            "completion_tokens": c.usage.completion_tokens,
                            "reply": c.reply,
                        }
                        for c in frame.summary_calls
                    ],
                    "diff": {
                        "entered": list(diff.entered),
                        "left": list(diff.left),
                        "summary": [list(op) for op in diff.summary_ops if op[0] != "equal"],
                        "facts_added": list(diff.facts_added),
                        "facts_removed": list(diff.facts_removed),
                    },
                }
            )
            before = frame
        types.append({"settings": asdict(result.settings), "frames": frames})
    return {
        "format": REPLAY_FORMAT,
        "title": title,
        "tokenizer": results[0].frames[0].payload.tokenizer if results and results[0].frames else None,
        "turns": [{"user": t.user, "assistant": t.assistant} for t in script],
        "types": types,
    }


def replay_markdown(export: dict) -> str:
    """A readable lesson: the conversation, then each turn with what every type sent and what changed."""
    out = [f"# {export['title']}\n", "## The conversation\n"]
    for number, turn in enumerate(export["turns"], 1):
        out.append(f"{number}. **user:** {turn['user']}  \n   **assistant:** {turn['assistant']}")
    out.append("\n## Turn by turn\n")
    for index in range(len(export["turns"])):
        out.append(f"### Turn {index + 1}\n")
        for kind in export["types"]:
            frame = kind["frames"][index]
            sections = ", ".join(f"{name} {tokens}" for name, tokens in frame["sections"].items())
            diff = frame["diff"]
            changes = []
            if diff["entered"]:
                changes.append("now sends turns " + ", ".join(map(str, diff["entered"])))
            if diff["left"]:
                changes.append("stopped sending turns " + ", ".join(map(str, diff["left"])))
            if diff["summary"]:
                changes.append("summary rewritten")
            out.append(
                f"**{kind['settings']['memory_type']}** · {frame['tokens']} tokens ({sections})"
                + (f" · {'; '.join(changes)}" if changes else "")
            )
            out.append(
                "```text\n"
                + "\n".join(f"[{m['role']}] {m['content']}" for m in frame["messages"]).replace("```", "'''")
                + "\n```"
            )
    return "\n".join(out)


def parse_replay_file(raw: bytes, limits: Limits = Limits()) -> tuple[str, list[ScriptTurn], list[MemorySettings]]:
    """An exported replay, validated whole (every text storable, at least one type), as a script and settings."""
    data = read_json_file(raw, max_bytes=MAX_REPLAY_FILE_BYTES, fmt=REPLAY_FORMAT, what="an exported Memory Lab replay")
    try:
        script = [
            ScriptTurn(message_text(t["user"], limits), reply_text(t["assistant"], limits)) for t in data["turns"]
        ]
        settings = [settings_from_dict(t["settings"], limits) for t in data["types"]]
    except (KeyError, TypeError) as exc:
        raise InvalidInput(f"The replay file is missing a field: {exc}.") from None
    if not script or len(script) > MAX_REPLAY_TURNS:
        raise InvalidInput(f"A replay holds 1 to {MAX_REPLAY_TURNS} turns.")
    if not settings:
        raise InvalidInput("The replay file names no memory type to replay.")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip() or not is_unicode(title):
        title = "Imported replay"
    return title[:200], script, settings


def preference_survival(replays: Sequence[TypeReplay], key: str) -> list[Survival]:
    """A pinned preference: sent in the system prompt of every request while it is switched on."""
    out = []
    for result in replays:
        carried = [f.turn for f in result.frames if any(fact.key == key for fact in f.payload.facts.injected)]
        missing = next((f.turn for f in result.frames if f.turn not in carried), None)
        status: SurvivalStatus = "kept" if carried and missing is None else ("never_sent" if not carried else "evicted")
        out.append(Survival(result.memory_type, status, carried[-1] if carried else None, missing, None))
    return out


def running_cost(result: TypeReplay, price) -> list[float]:
    """Cumulative cost after each turn: the request, the reply and any summary calls, at `price`."""
    total, out = 0.0, []
    for frame in result.frames:
        summary_prompt = sum(c.counted_prompt_tokens or 0 for c in frame.summary_calls)
        summary_completion = sum(c.usage.completion_tokens or 0 for c in frame.summary_calls)
        total += price.cost(frame.payload.total_tokens + summary_prompt, frame.reply_tokens + summary_completion)
        out.append(total)
    return out
