"""ChatGPT data exports (conversations.json, or the zip it comes in), streamed: one conversation in memory at a time.

Everything a file says is bounded before it is held: the JSON read (MAX_EXPORT_BYTES, counted, whatever the zip's
header claims), one string (cut past 12 bytes per allowed character: json_guard), one conversation
(MAX_CONVERSATION_CHARS of text, MAX_CONVERSATION_VALUES values, MAX_CONVERSATION_MESSAGES messages) and the number
of conversations. A 131 KB zip holding one 128 MB message took 46 s to preview and gigabytes to import before.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Collection, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ..config import Limits
from ..errors import InvalidInput
from .common import SourceConversation, SourceMessage, SourceRole
from .json_guard import CUT_MARK, BoundedReader, LongStringCutter
from .keys import MAX_KEY_CHARS

TEXT_TYPES = {"text", "multimodal_text"}
MAX_DEPTH = 64  # a real export nests about 10 levels
# 2 GB of JSON: twice the 1 GB export bench/import_sources.py measures (51 s to preview, +30 MB); memory does not
# grow with the file (streamed), time does, so this bounds what one upload (or a zip bomb) can cost: about 2 minutes.
MAX_EXPORT_BYTES = 2_000_000_000
# zipfile reads a zip's whole directory when it opens it (about 550 bytes of memory an entry of 46 bytes or more):
# far more files than an export with its images holds, checked from the zip's end record first. zipfile reads the
# directory by its size, not its count, so both are capped: at most about 350,000 entries, 190 MB.
MAX_ZIP_ENTRIES = 100_000
ZIP_DIRECTORY_BYTES_PER_FILE = 160  # 46 bytes a file and a name of 114 on average: 16 MB for 100,000
MAX_CONVERSATIONS = 100_000  # a preview keeps a line for each; heavy users' exports hold tens of thousands
MAX_CONVERSATION_MESSAGES = 10_000  # nodes in one conversation's message tree
MAX_CONVERSATION_CHARS = 64_000_000  # text in one conversation: what is held in memory while it is read
MAX_CONVERSATION_VALUES = 2_000_000  # keys and values in one conversation (a message node has about 40)
MAX_NAME_CHARS = 60  # a role, content type or recipient, as shown
MAX_KINDS = 20  # distinct content types named per conversation; more are counted as "other types"
MAX_TITLE_CHARS = 1_000  # a preview line's title (stored titles are cut shorter, to Limits.max_title_chars)
# Content a ChatGPT message holds besides text: shown as not a turn, by kind (reasoning, code run, browsing…).
TOOL_TYPES = {
    "code",
    "execution_output",
    "tether_browsing_display",
    "tether_quote",
    "thoughts",
    "reasoning_recap",
    "system_error",
    "sonic_webpage",
    "computer_output",
}


class ChatGPTExport:
    """Each conversation's active branch: from the node shown last (current_node) back to the root, in order."""

    kind = "ChatGPT conversation"
    origin = "chatgpt"  # ChatGPT's conversation ids are unique, so a later export finds what an earlier one brought

    def __init__(
        self,
        *,
        path: Path | None = None,
        data: bytes | None = None,
        name: str | None = None,
        limits: Limits | None = None,
        max_bytes: int = MAX_EXPORT_BYTES,
        max_zip_entries: int = MAX_ZIP_ENTRIES,
    ) -> None:
        if path is None and data is None:
            raise InvalidInput("Give a ChatGPT export: conversations.json or the zip.")
        if path is not None and not path.is_file():
            raise InvalidInput(f"There is no file at {path}.")
        self._path, self._data = path, data
        self._max_chars = (limits or Limits()).max_message_chars
        self._max_bytes = max_bytes
        self._max_zip_entries = max_zip_entries
        self.label = name or str(path)
        with closing(self._open()) as stream, _zip_errors():
            head = stream.read(64).lstrip()
        if not head.startswith(b"["):
            raise InvalidInput("The file is not a ChatGPT export: conversations.json holds a list of conversations.")

    def _open(self) -> LongStringCutter:
        """The JSON, read at most max_bytes (counted as read: a zip's stated sizes are only used to refuse early)."""
        files = ExitStack()  # closed with the stream this returns
        raw: IO[bytes] = files.enter_context(
            open(self._path, "rb") if self._path is not None else io.BytesIO(self._data or b"")  # noqa: SIM115
        )
        too_big = (
            f"The export holds more than {self._max_bytes / 1e6:,.0f} MB of JSON (once unzipped), "
            "more than Memory Lab reads from one file; nothing was imported."
        )
        with files.pop_all() as failing, _zip_errors():  # closes the files if this raises, else hands them on
            if not zipfile.is_zipfile(raw):
                declared = raw.seek(0, io.SEEK_END)
                raw.seek(0)
                stream = raw
            else:
                directory = zip_directory(raw)
                if (
                    directory is None
                    or directory[0] > self._max_zip_entries
                    or directory[1] > self._max_zip_entries * ZIP_DIRECTORY_BYTES_PER_FILE
                ):
                    raise InvalidInput(
                        f"The zip lists more than {self._max_zip_entries:,} files (or its directory cannot be read), "
                        "more than a ChatGPT export holds; nothing was imported."
                    )
                archive = failing.enter_context(zipfile.ZipFile(raw))
                names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "conversations.json"]
                if not names:
                    raise InvalidInput("The zip holds no conversations.json, so it is not a ChatGPT data export.")
                member = archive.getinfo(min(names, key=len))
                declared = member.file_size  # what the zip says: enough to refuse early, never to trust
                stream = failing.enter_context(archive.open(member))
            if declared > self._max_bytes:
                raise InvalidInput(too_big)
            files = failing.pop_all()
        # No string of max_chars characters is longer than 12 bytes a character in JSON (a surrogate pair's escapes).
        return LongStringCutter(BoundedReader(stream, self._max_bytes, too_big, files.close), 12 * self._max_chars)

    def conversations(self, keys: Collection[str] | None = None) -> Iterator[SourceConversation]:
        import ijson

        seen: dict[str, int] = {}  # id -> the conversation that has it first
        with closing(self._open()) as stream:
            try:
                for n, item in enumerate(_items(stream), 1):
                    if n > MAX_CONVERSATIONS:
                        raise InvalidInput(
                            f"The export holds more than {MAX_CONVERSATIONS:,} conversations, more than Memory Lab "
                            "reads from one file; nothing was imported."
                        )
                    conv = _conversation(item, n, self._max_chars)
                    first = seen.setdefault(conv.key, n)
                    if first != n and conv.problem is None:
                        conv = replace(
                            conv,
                            problem=f"its id is also conversation {first:,}'s in this file (that one is imported)",
                        )
                    if keys is None or conv.key in keys:
                        yield conv
            except ijson.JSONError as exc:
                raise InvalidInput(f"The export is not valid JSON ({str(exc)[:200]}); nothing was imported.") from None
            except (zipfile.BadZipFile, EOFError) as exc:
                raise InvalidInput(f"The zip is damaged ({exc}); nothing was imported.") from None

    def close(self) -> None:
        pass


def zip_directory(raw: IO[bytes]) -> tuple[int, int] | None:
    """(files, directory bytes) from a zip's end record (zip64 too), read before zipfile loads the whole directory."""
    size = raw.seek(0, io.SEEK_END)
    tail_bytes = min(size, _END.size + 0xFFFF)  # the record, then a comment of at most 64 KB
    raw.seek(size - tail_bytes)
    tail = raw.read(tail_bytes)
    raw.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        return None
    entries, directory_bytes = _END.unpack_from(tail, at)[4:6]
    if entries != 0xFFFF and directory_bytes != 0xFFFFFFFF:
        return int(entries), int(directory_bytes)
    locator = at - _ZIP64_LOCATOR.size  # zip64: the real count is in a record the locator points at
    if locator < 0 or tail[locator : locator + 4] != b"PK\x06\x07":
        return None
    record_at = _ZIP64_LOCATOR.unpack_from(tail, locator)[2]
    if not 0 <= record_at <= size - _ZIP64_END.size:
        return None
    raw.seek(record_at)
    record = raw.read(_ZIP64_END.size)
    raw.seek(0)
    if record[:4] != b"PK\x06\x06":
        return None
    fields = _ZIP64_END.unpack(record)
    return int(fields[7]), int(fields[8])


_END = struct.Struct("<4s4H2LH")  # signature, disk numbers, entries here, entries, directory size and offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk, the zip64 end record's offset, disks
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")  # signature, size, versions, disks, entries here, entries, size, offset


@contextmanager
def _zip_errors() -> Iterator[None]:
    """A zip that zipfile cannot open (damaged, encrypted, an unknown compression) gets one sentence."""
    try:
        yield
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        raise InvalidInput(f"The zip cannot be read ({str(exc)[:200]}); nothing was imported.") from None


@dataclass(frozen=True)
class _Oversized:
    """A conversation read no further than a cap: what was seen of it before, and why it stopped."""

    head: dict[str, Any]
    problem: str


def _items(stream: LongStringCutter) -> Iterator[Any]:
    """The top-level list's items, one at a time, refusing nesting deeper than a real export has.

    ijson.items builds a dotted path for every event, which costs the square of the depth: 80,000 nested brackets
    (160 KB) took 24 s. basic_parse with a depth count takes linear time and stops at MAX_DEPTH. An item past a
    conversation's caps is let go as soon as it passes one; its remaining events are only counted.
    """
    import ijson
    from ijson.common import ObjectBuilder

    depth = 0  # 1 inside the top-level list, 2 inside one of its items
    builder: ObjectBuilder | None = None
    oversized: str | None = None
    head: dict[str, Any] = {}  # the item's own scalar fields (title, ids), kept even when the rest is let go
    key: str | None = None  # the item's current field
    chars = values = nodes = 0
    for event, value in ijson.basic_parse(stream, use_float=True):
        if event in ("start_map", "start_array"):
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidInput(f"The file nests its data deeper than {MAX_DEPTH} levels; no ChatGPT export does.")
            if depth == 1:
                continue  # the list itself
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                continue  # the list's end
        elif depth == 1:
            yield value  # a plain value in the list: _conversation says it is not a conversation
            continue
        if depth == 2 and event == "map_key":
            key = value
        elif depth == 2 and event == "string" and key in ("title", "id", "conversation_id"):
            head[key] = value
        elif depth == 3 and event == "map_key" and key == "mapping":
            nodes += 1
        values += 1
        chars += len(value) if isinstance(value, str) else 0
        if oversized is None:
            oversized = _over_caps(nodes, chars, values)
            if builder is None:
                builder = ObjectBuilder()
            if oversized is None:
                builder.event(event, value)
            else:
                builder = None  # let the conversation go now: the rest of it is only counted
        if depth == 1:
            yield builder.value if builder is not None else _Oversized(head, oversized or "")
            builder, oversized, head, key = None, None, {}, None
            chars = values = nodes = 0


def _over_caps(nodes: int, chars: int, values: int) -> str | None:
    if nodes > MAX_CONVERSATION_MESSAGES:
        return f"it has more than {MAX_CONVERSATION_MESSAGES:,} messages, so it was read no further"
    if chars > MAX_CONVERSATION_CHARS:
        return f"it holds more than {MAX_CONVERSATION_CHARS:,} characters, so it was read no further"
    if values > MAX_CONVERSATION_VALUES:
        return f"it holds more than {MAX_CONVERSATION_VALUES:,} values, so it was read no further"
    return None


def _conversation(item: Any, n: int, max_chars: int) -> SourceConversation:
    if isinstance(item, _Oversized):
        return SourceConversation(_key(item.head, n), _title(item.head), (), None, item.problem)
    if not isinstance(item, dict) or not isinstance(item.get("mapping"), dict):
        raise InvalidInput(f"Conversation {n:,} of the file is not in ChatGPT's export format (no message tree).")
    key = _key(item, n)
    branch, problem = _active_branch(item["mapping"], item.get("current_node"))
    kinds = _Kinds()
    messages = tuple(m for m in (_message(node.get("message"), kinds) for node in branch) if m is not None)
    if problem is None:
        problem = _too_long(messages, max_chars)
    return SourceConversation(key, _title(item), messages, _when(item.get("create_time")), problem)


def _key(item: dict, n: int) -> str:
    """The conversation's id; one longer than any ChatGPT id (36 characters) is replaced by its place in the file."""
    key = str(item.get("conversation_id") or item.get("id") or f"#{n}")
    return key if len(key) <= MAX_KEY_CHARS and CUT_MARK not in key else f"#{n}"


def _title(item: dict) -> str:
    title = item.get("title")
    return (title[:MAX_TITLE_CHARS] if isinstance(title, str) else "") or "Untitled ChatGPT conversation"


def _too_long(messages: tuple[SourceMessage, ...], max_chars: int) -> str | None:
    """A message that would be a turn and is longer than the message limit: said before it is held (json_guard)."""
    for n, m in enumerate(messages, 1):
        if m.role in ("user", "assistant") and CUT_MARK in m.text:
            return (
                f"message {n:,} is longer than {max_chars:,} characters (the limit, MEMORYLAB_MAX_MESSAGE_CHARS), "
                "so it was read no further"
            )
    return None


class _Kinds:
    """Content type names, as shown: each cut to MAX_NAME_CHARS, and past MAX_KINDS distinct ones, "other types"."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def name(self, raw: str) -> str:
        name = raw[:MAX_NAME_CHARS]
        if name not in self._seen and len(self._seen) >= MAX_KINDS:
            return "other types"
        self._seen.add(name)
        return name


def _active_branch(mapping: dict, current: Any) -> tuple[list[dict], str | None]:
    """The nodes from the root to `current`; without one, the branch that ends last."""
    if not isinstance(current, str) or current not in mapping:
        leaves = [k for k, v in mapping.items() if isinstance(v, dict) and not v.get("children")]
        current = max(leaves, key=lambda k: _node_time(mapping[k]), default=None)
    chain: list[dict] = []
    seen: set[str] = set()
    node = current
    while isinstance(node, str):
        entry = mapping.get(node)
        if node in seen or not isinstance(entry, dict):
            return [], "its message tree is broken (a loop, or a parent that is missing)"
        seen.add(node)
        chain.append(entry)
        node = entry.get("parent")
    chain.reverse()
    return chain, None


def _node_time(node: dict) -> float:
    message = node.get("message")
    stamp = message.get("create_time") if isinstance(message, dict) else None
    return float(stamp) if isinstance(stamp, int | float) else 0.0


def _message(message: Any, kinds: _Kinds) -> SourceMessage | None:
    """One node's message; None for the empty hidden root ChatGPT puts at the top of every tree."""
    if not isinstance(message, dict):
        return None
    author, content, metadata = (_dict(message.get(k)) for k in ("author", "content", "metadata"))
    role = str(author.get("role") or "")[:MAX_NAME_CHARS]
    ctype = str(content.get("content_type") or "")
    text, other = _text(content, kinds)
    at = _when(message.get("create_time"))
    kind = f"{role} {kinds.name(ctype)}".strip()
    if role == "system" and not text.strip():
        return None
    if ctype == "user_editable_context":  # the user's custom instructions
        parts = [content.get(k) for k in ("user_profile", "user_instructions")]
        return SourceMessage("system", "\n\n".join(p for p in parts if isinstance(p, str) and p), kind, at)
    mapped: SourceRole
    if role == "user" and ctype in TEXT_TYPES:
        mapped = "user"
    elif role == "assistant" and ctype in TEXT_TYPES and message.get("recipient", "all") == "all":
        mapped = "assistant"
    elif role == "system" and ctype in TEXT_TYPES:
        mapped = "system"
    elif role == "tool" or (role == "assistant" and (ctype in TOOL_TYPES or ctype in TEXT_TYPES)):
        mapped = "tool"
    else:
        mapped = "unknown"
    recipient = message.get("recipient")
    note = ""
    if mapped == "tool" and isinstance(recipient, str):
        note = "to " + recipient[:MAX_NAME_CHARS]
    if mapped == "user" and not text.strip() and other:
        text = "[" + ", ".join(sorted(other)) + " not imported]"
    if metadata.get("is_visually_hidden_from_conversation") and mapped in ("user", "assistant"):
        mapped = "system"
    return SourceMessage(mapped, text, kind, at, note, tuple(sorted(other.items())))


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(content: dict, kinds: _Kinds) -> tuple[str, dict[str, int]]:
    other: dict[str, int] = {}
    texts: list[str] = []
    parts = content.get("parts")
    if isinstance(parts, list):
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
            else:
                name = kinds.name(str(part.get("content_type", "part"))) if isinstance(part, dict) else "part"
                other[name] = other.get(name, 0) + 1
    elif isinstance(content.get("text"), str):
        texts.append(content["text"])
    return "\n".join(t for t in texts if t), other


def _when(stamp: Any) -> datetime | None:
    if not isinstance(stamp, int | float) or not 0 < stamp < 32_503_680_000:
        return None
    return datetime.fromtimestamp(stamp, UTC)
