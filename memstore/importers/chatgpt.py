"""ChatGPT data exports (conversations.json, or the zip it comes in), streamed: one conversation in memory at a time."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ..errors import InvalidInput
from .common import SourceConversation, SourceMessage, SourceRole

TEXT_TYPES = {"text", "multimodal_text"}
MAX_DEPTH = 64  # a real export nests about 10 levels
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

    def __init__(self, *, path: Path | None = None, data: bytes | None = None, name: str | None = None) -> None:
        if path is None and data is None:
            raise InvalidInput("Give a ChatGPT export: conversations.json or the zip.")
        if path is not None and not path.is_file():
            raise InvalidInput(f"There is no file at {path}.")
        self._path, self._data = path, data
        self.label = name or str(path)
        with self._open() as stream:
            head = stream.read(64).lstrip()
        if not head.startswith(b"["):
            raise InvalidInput("The file is not a ChatGPT export: conversations.json holds a list of conversations.")

    def _open(self) -> IO[bytes]:
        raw: IO[bytes] = open(self._path, "rb") if self._path is not None else io.BytesIO(self._data or b"")  # noqa: SIM115
        if not zipfile.is_zipfile(raw):
            raw.seek(0)
            return raw
        archive = zipfile.ZipFile(raw)
        names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "conversations.json"]
        if not names:
            archive.close()
            raise InvalidInput("The zip holds no conversations.json, so it is not a ChatGPT data export.")
        return archive.open(min(names, key=len))

    def conversations(self, keys: Collection[str] | None = None) -> Iterator[SourceConversation]:
        import ijson

        with self._open() as stream:
            try:
                for n, item in enumerate(_items(stream), 1):
                    conv = _conversation(item, n)
                    if keys is None or conv.key in keys:
                        yield conv
            except ijson.JSONError as exc:
                raise InvalidInput(f"The export is not valid JSON ({str(exc)[:200]}); nothing was imported.") from None
            except (zipfile.BadZipFile, EOFError) as exc:
                raise InvalidInput(f"The zip is damaged ({exc}); nothing was imported.") from None

    def close(self) -> None:
        pass


def _items(stream: IO[bytes]) -> Iterator[Any]:
    """The top-level list's items, one at a time, refusing nesting deeper than a real export has.

    ijson.items builds a dotted path for every event, which costs the square of the depth: 80,000 nested brackets
    (160 KB) took 24 s. basic_parse with a depth count takes linear time and stops at MAX_DEPTH.
    """
    import ijson
    from ijson.common import ObjectBuilder

    depth = 0  # 1 inside the top-level list, 2 inside one of its items
    builder: ObjectBuilder | None = None
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
        if builder is None:
            builder = ObjectBuilder()
        builder.event(event, value)
        if depth == 1:
            yield builder.value
            builder = None


def _conversation(item: Any, n: int) -> SourceConversation:
    if not isinstance(item, dict) or not isinstance(item.get("mapping"), dict):
        raise InvalidInput(f"Conversation {n:,} of the file is not in ChatGPT's export format (no message tree).")
    key = str(item.get("conversation_id") or item.get("id") or f"#{n}")
    title = item.get("title") if isinstance(item.get("title"), str) else ""
    branch, problem = _active_branch(item["mapping"], item.get("current_node"))
    messages = tuple(m for m in (_message(node.get("message")) for node in branch) if m is not None)
    return SourceConversation(
        key, title or "Untitled ChatGPT conversation", messages, _when(item.get("create_time")), problem
    )


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


def _message(message: Any) -> SourceMessage | None:
    """One node's message; None for the empty hidden root ChatGPT puts at the top of every tree."""
    if not isinstance(message, dict):
        return None
    author, content, metadata = (_dict(message.get(k)) for k in ("author", "content", "metadata"))
    role = str(author.get("role") or "")
    ctype = str(content.get("content_type") or "")
    text, other = _text(content)
    at = _when(message.get("create_time"))
    kind = f"{role} {ctype}".strip()
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
    note = f"to {message['recipient']}" if mapped == "tool" and isinstance(message.get("recipient"), str) else ""
    if mapped == "user" and not text.strip() and other:
        text = "[" + ", ".join(sorted(other)) + " not imported]"
    if metadata.get("is_visually_hidden_from_conversation") and mapped in ("user", "assistant"):
        mapped = "system"
    return SourceMessage(mapped, text, kind, at, note, tuple(sorted(other.items())))


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(content: dict) -> tuple[str, dict[str, int]]:
    other: dict[str, int] = {}
    texts: list[str] = []
    parts = content.get("parts")
    if isinstance(parts, list):
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
            else:
                name = str(part.get("content_type", "part")) if isinstance(part, dict) else "part"
                other[name] = other.get(name, 0) + 1
    elif isinstance(content.get("text"), str):
        texts.append(content["text"])
    return "\n".join(t for t in texts if t), other


def _when(stamp: Any) -> datetime | None:
    if not isinstance(stamp, int | float) or not 0 < stamp < 32_503_680_000:
        return None
    return datetime.fromtimestamp(stamp, UTC)
