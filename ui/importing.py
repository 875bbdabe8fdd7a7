"""The Conversations page's import: pick a source, preview what it holds, choose, and import (all or nothing)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from memstore import Limits, MemoryLabError
from memstore.importers import SOURCE_KINDS, ConversationPreview, Source, import_source, open_source, preview_source
from memstore.importers.common import describe_left_out, plan
from memstore.importers.scratch import remove_stale
from memstore.transfer import import_export
from ui.page import Page, auth_configured, exposed_without_login
from ui.render import literal, plain_text, show_error, show_text

SHOWN_LINES = 500  # preview lines drawn in the table; all of them are counted
PICKABLE = 1_000  # conversations offered to pick from one by one
LOOK_INSIDE_MESSAGES = 200
ROLE_LABELS = {"user": "user", "assistant": "assistant", "system": "system · not a turn", "tool": "tool · not a turn"}


@dataclass(frozen=True)
class Preview:
    """A preview kept between reruns, for the source it was made from."""

    signature: tuple
    label: str
    lines: tuple[ConversationPreview, ...]

    @property
    def importable(self) -> list[ConversationPreview]:
        return [line for line in self.lines if line.importable]


def server_files_allowed() -> bool:
    """Paths and URLs on this computer only when Memory Lab serves its owner alone (no login, loopback)."""
    return not auth_configured() and not exposed_without_login()


def import_section(page: Page) -> None:
    st.subheader("Import")
    if not st.session_state.get("import_swept"):  # folders a killed import left: gone before anything is read
        remove_stale()
        st.session_state["import_swept"] = True
    done = st.session_state.pop("import_done", None)
    if done:
        st.success(
            literal(done) + " They are in the list at the top; the Compare page replays them through every type."
        )
    kinds = {"memorylab": "Memory Lab export", **SOURCE_KINDS}
    kind = st.radio("From", list(kinds), format_func=kinds.__getitem__, horizontal=True, key="import_kind")
    if kind == "memorylab":
        _memorylab_import(page)
        return
    opener = _source_form(page, kind)
    if opener is None:
        return
    signature, open_it = opener
    preview: Preview | None = st.session_state.get("import_preview")
    if preview is not None and preview.signature != signature:
        preview = None
    if st.button("Preview", key="import_preview_button", type="primary" if preview is None else "secondary"):
        try:
            with open_it() as source, st.spinner("Reading the source…"):
                lines = tuple(preview_source(source, page.store, page.user, page.settings.limits))
                preview = Preview(signature, source.label, lines)
        except MemoryLabError as exc:
            show_error(exc, what="Nothing can be imported: ")
            preview = None
        st.session_state["import_preview"] = preview
    if preview is not None:
        _show_preview(page, preview, open_it)


def _memorylab_import(page: Page) -> None:
    st.caption("A JSON file exported from Memory Lab becomes new conversations; nothing existing is changed.")
    upload = st.file_uploader("Exported JSON file", type=["json"])
    if upload is not None and st.button("Import", key="do_import"):
        try:
            created = import_export(page.store, page.user, upload.getvalue(), page.client.counter())
        except MemoryLabError as exc:
            show_error(exc, what="Nothing was imported: ")
        else:
            st.success(
                f"Imported {len(created):d} conversation{'s' if len(created) != 1 else ''}: "
                + literal(", ".join(c.title for c in created))
            )


def _source_form(page: Page, kind: str) -> tuple[tuple, Callable[[], AbstractContextManager[Source]]] | None:
    """The inputs for one kind of source; returns what identifies it and how to open it, once one is given."""
    hints = {
        "langchain": (
            "The SQLite file (upload)",
            ["db", "sqlite", "sqlite3"],
            "sqlite:///path/chat.db or postgresql://…",
        ),
        "langgraph": ("The checkpoints SQLite file (upload)", ["db", "sqlite", "sqlite3"], "path/to/checkpoints.db"),
        "chatgpt": ("conversations.json or the export's zip (upload)", ["json", "zip"], "path/to/export.zip"),
    }
    label, types, placeholder = hints[kind]
    st.caption(
        "Read only: Memory Lab never writes to the source. Each conversation becomes a new one here, with buffer "
        "memory; tool messages and tool calls are shown but are not turns."
    )
    upload = st.file_uploader(literal(label), type=types, key=f"import_upload_{kind}")
    location = ""
    if server_files_allowed():
        location = st.text_input(
            "…or where it is on this computer" + (" (a path or a database URL)" if kind == "langchain" else ""),
            placeholder=placeholder,
            key=f"import_location_{kind}",
            help="For big sources: nothing is uploaded, and the file is read in a stream.",
        )
    else:
        st.caption("With login on, Memory Lab reads only uploaded files, never files on the server.")
    table_name = "message_store"
    if kind == "langchain":
        table_name = st.text_input("Table", value="message_store", key="import_table") or "message_store"
    if upload is None and not location.strip():
        return None
    signature = (kind, upload.file_id if upload is not None else location.strip(), table_name)

    def open_it() -> AbstractContextManager[Source]:
        """Opens the source; the upload's bytes are copied only here, not on every rerun of the page."""
        return open_source(
            kind,
            data=upload.getvalue() if upload is not None else None,
            name=upload.name if upload is not None else None,
            location=None if upload is not None else location,
            table_name=table_name,
            own_database=page.settings.database_url,
            limits=page.settings.limits,
        )

    return signature, open_it


def _show_preview(page: Page, preview: Preview, open_it: Callable[[], AbstractContextManager[Source]]) -> None:
    lines = preview.lines
    importable = preview.importable
    before = sum(1 for line in lines if line.imported_as is not None)
    broken = sum(1 for line in lines if line.problem is not None)
    st.caption(
        f"Found {len(lines):,} conversation{'s' if len(lines) != 1 else ''} "
        f"({sum(line.message_count for line in lines):,} messages) in "
        + literal(preview.label)
        + f": {len(importable):,} can be imported"
        + (f", {before:,} were imported before" if before else "")
        + (f", {broken:,} cannot be imported" if broken else "")
        + "."
    )
    if not lines:
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "title": plain_text(line.title),
                    "messages": line.message_count,
                    "turns": line.turns,
                    "import": _status(line),
                    "first line": line.first_line,
                    "not turns (left out or joined)": describe_left_out(line.left_out),
                }
                for line in lines[:SHOWN_LINES]
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    if len(lines) > SHOWN_LINES:
        st.caption(f"The first {SHOWN_LINES:,} are listed; all {len(lines):,} are counted.")
    by_key = {line.key: line for line in lines}
    with st.expander("Look inside one conversation", key="import_look_open", on_change="rerun"):
        if st.session_state.get("import_look_open"):
            key = st.selectbox(
                "Conversation",
                list(by_key)[:PICKABLE],
                format_func=lambda k: plain_text(by_key[k].title),
                key="import_look_key",
            )
            _look_inside(open_it, (preview.signature, key), page.settings.limits)
    if not importable:
        return
    how = st.radio(
        "Import",
        ["all", "some"],
        format_func={"all": f"All {len(importable):,} that can be imported", "some": "Only the ones I pick"}.get,
        horizontal=True,
        key="import_how",
    )
    keys: set[str] | None = None
    if how == "some":
        chosen = st.multiselect(
            "Conversations to import",
            [line.key for line in importable[:PICKABLE]],
            format_func=lambda k: plain_text(by_key[k].title),
            key="import_pick",
        )
        keys = set(chosen)
    if st.button("Import", type="primary", disabled=keys is not None and not keys, key="import_go"):
        try:
            with open_it() as source, st.spinner("Importing…"):
                result = import_source(
                    page.store,
                    page.user,
                    source,
                    page.client.counter(),
                    # All: every line, so the result names the ones that cannot be imported, and why.
                    keys=keys if keys is not None else {line.key for line in lines},
                )
        except MemoryLabError as exc:
            show_error(exc, what="Nothing was imported: ")
        else:
            st.session_state.pop("import_preview", None)
            st.session_state["import_done"] = result.sentence()
            st.rerun()  # the list at the top of the page shows them


def _status(line: ConversationPreview) -> str:
    if line.problem is not None:
        return "cannot: " + line.problem
    if line.imported_as is not None:
        return f"imported before (#{line.imported_as})"
    return "yes"


def _look_inside(open_it: Callable[[], AbstractContextManager[Source]], which: tuple, limits: Limits) -> None:
    """One conversation's messages as the source holds them; read once (a big export is a pass over the file)."""
    cached = st.session_state.get("import_look")
    if cached is not None and cached[0] == which:
        found = cached[1]
    else:
        try:
            with open_it() as source, st.spinner("Reading the conversation…"):
                found = next(iter(source.conversations({which[1]})), None)
        except MemoryLabError as exc:
            show_error(exc, what="Cannot read it: ")
            return
        st.session_state["import_look"] = (which, found)
    if found is None:
        st.caption("It is no longer in the source.")
        return
    system_from = plan(found, limits).system_from
    for n, m in enumerate(found.messages[:LOOK_INSIDE_MESSAGES]):
        label = (
            "system · becomes the conversation's system prompt"
            if n == system_from
            else ROLE_LABELS.get(m.role, "unknown type " + m.kind + " · not imported")
        )
        extra = [m.note] if m.note else []
        extra += [f"{count} {part} not imported" for part, count in m.omitted]
        st.caption(literal(label + (" (" + "; ".join(extra) + ")" if extra else "")))
        show_text(m.text if m.text else "(no text)")
    if len(found.messages) > LOOK_INSIDE_MESSAGES:
        st.caption(f"The first {LOOK_INSIDE_MESSAGES:d} of {len(found.messages):,} messages.")
