"""Stored, model-made and file-supplied text reaches the page only through ui/render.py: literal or model Markdown.

A scan of every UI file: any value put into a sink that renders Markdown (st.markdown, captions,
errors, labels, help texts, progress texts, tabs, toasts) must be a constant, a number with a
format spec, or a call to `literal(...)` / `model_markdown(...)`. Forgetting is a failing test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import plain
from ui.render import capped, literal, model_markdown, plain_text

ROOT = Path(__file__).resolve().parent.parent
UI_FILES = sorted([ROOT / "app.py", *(ROOT / "ui").glob("*.py"), *(ROOT / "app_pages").glob("*.py")])
# Element and widget calls whose first argument, and these keywords, are rendered as Markdown.
MARKDOWN_SINKS = {
    "markdown",
    "caption",
    "error",
    "warning",
    "info",
    "success",
    "toast",
    "title",
    "header",
    "subheader",
    "progress",
    "expander",
    "tabs",
    "button",
    "checkbox",
    "toggle",
    "selectbox",
    "text_input",
    "text_area",
    "number_input",
    "radio",
    "multiselect",
    "slider",
    "download_button",
    "metric",
    "form_submit_button",
    "popover",
    "select_slider",
    "file_uploader",
    "spinner",
    "date_input",
    "color_picker",
    "page_link",
    "status",
    "write",
}
MARKDOWN_KEYWORDS = {"body", "label", "text", "help"}
SAFE_CALLS = {"literal", "model_markdown"}
ONLY_ON_ST = {"status", "spinner", "write"}
VALUE_FIRST = {"progress"}  # st.progress(value, text=...)


class Scope:
    """What the names of one function (or module) are assigned, to follow `kind = "..."` into a sink."""

    def __init__(self, body: ast.AST):
        self.assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(body):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.assigned.setdefault(target.id, []).append(node.value)
            elif (
                isinstance(node, (ast.AnnAssign, ast.AugAssign))
                and isinstance(node.target, ast.Name)
                and node.value
                or isinstance(node, ast.NamedExpr)
            ):
                self.assigned.setdefault(node.target.id, []).append(node.value)
        self._checking: set[str] = set()

    def safe(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, (str, int, float)) or node.value is None
        if isinstance(node, ast.Name):
            values = self.assigned.get(node.id)
            if not values or node.id in self._checking:
                return False
            self._checking.add(node.id)
            try:
                return all(self.safe(v) for v in values)
            finally:
                self._checking.discard(node.id)
        if isinstance(node, ast.JoinedStr):
            return all(
                isinstance(v, ast.Constant) or v.format_spec is not None or self.safe(v.value) for v in node.values
            )  # {n:,} is a number
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.safe(node.left) and self.safe(node.right)
        if isinstance(node, ast.BoolOp):
            return all(self.safe(v) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self.safe(node.body) and self.safe(node.orelse)
        if isinstance(node, (ast.List, ast.Tuple)):
            return all(self.safe(e) for e in node.elts)
        if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
            return self.safe(node.elt)
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in SAFE_CALLS or name.endswith("_md"):  # *_md builders are checked on their own
                return True
            if name == "join" and isinstance(func, ast.Attribute) and self.safe(func.value):
                return len(node.args) == 1 and self.safe(node.args[0])
        return False


def _scopes(tree: ast.Module):
    """(scope, node) for every call, each in its innermost function's scope."""

    def visit(node: ast.AST, scope: Scope):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from visit(child, Scope(child))
            else:
                yield scope, child
                yield from visit(child, scope)

    yield from visit(tree, Scope(tree))


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for scope, node in _scopes(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            function = next(
                (
                    f
                    for f in ast.walk(tree)
                    if isinstance(f, ast.FunctionDef) and node in ast.walk(f) and f.name.endswith("_md")
                ),
                None,
            )
            if function is not None and not scope.safe(node.value):
                found.append(f"{path.name}:{node.lineno}: return in {function.name} ({ast.unparse(node.value)[:80]})")
            continue
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        if name not in MARKDOWN_SINKS:
            continue
        if name in ONLY_ON_ST and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "st"):
            continue  # download.status(entry) is not st.status(label)
        positional = [] if name in VALUE_FIRST else node.args[:1]
        for arg in positional + [k.value for k in node.keywords if k.arg in MARKDOWN_KEYWORDS]:
            if not scope.safe(arg):
                found.append(f"{path.name}:{arg.lineno}: {name}({ast.unparse(arg)[:90]})")
    return found


def test_every_markdown_sink_in_the_ui_shows_stored_text_literally():
    found = [v for path in UI_FILES for v in violations(path)]
    assert not found, "wrap these in literal(...) or model_markdown(...):\n" + "\n".join(found)


def test_plain_text_and_code_blocks_are_drawn_only_by_ui_render():
    """st.text and st.code show bidi controls as they are: every stored text goes through show_text/show_code."""
    found = [
        f"{path.name}:{node.lineno}"
        for path in UI_FILES
        if path.name != "render.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("text", "code")
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "st"
    ]
    assert not found, "use show_text, show_code or copyable from ui.render:\n" + "\n".join(found)


def test_the_scan_catches_an_unescaped_title(tmp_path):
    page = tmp_path / "page.py"
    page.write_text(
        'import streamlit as st\nst.markdown(f"### {title}")\nst.caption(literal(title))\n'
        'st.error(f"{n:,} rows")\nst.button(f"Delete {name}")\n'
    )
    assert [v.split(": ", 1)[1] for v in violations(page)] == ["markdown(f'### {title}')", "button(f'Delete {name}')"]


@pytest.mark.parametrize(
    "text",
    [
        "![pixel](http://127.0.0.1:9/p.png)",
        "<img src=x>",
        "$\\rule{500em}{500em}$",
        ":red[alert] :material/home:",
        "https://example.com/foo-bar_baz.html",
        "# heading\n* item",
        "back\\slash `code`",
        "a\n\nb  c",
    ],
)
def test_literal_escapes_every_markdown_character(text):
    rendered = literal(text)
    unescaped = "".join(
        c
        for i, c in enumerate(rendered)
        if not (
            c == "\\"
            and i + 1 < len(rendered)
            and rendered[i + 1] in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
            and (i == 0 or rendered[i - 1] != "\\")
        )
    )
    assert "![" not in rendered and "$" not in rendered.replace("\\$", "")
    assert unescaped.replace("  \n", "\n").replace("\\\\", "\\") == text or "\\" in text


def test_model_markdown_keeps_formatting_but_not_images_or_math():
    reply = "**Bold** and ![p](http://x/p.png) cost $5 and $\\rule{9em}{9em}$\n```\n![in code](u) $x$\n```\n`$y$`"
    shown = model_markdown(reply)
    assert "**Bold**" in shown and "!\\[p]" in shown and "\\$5" in shown and "\\$\\rule" in shown
    assert "![in code](u) $x$" in shown and "`$y$`" in shown  # code is literal already: left alone


def test_long_replies_are_capped():
    head, rest = capped("row\n" * 3_000)
    assert head.count("\n") < 400 and head + rest == "row\n" * 3_000
    head, rest = capped("x" * 30_000)
    assert len(head) == 20_000 and len(rest) == 10_000


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@pytest.mark.parametrize("control", list(BIDI))
def test_bidi_controls_in_stored_text_are_drawn_as_their_codes(control):
    title = f"invoice{control}fdp.exe"
    code = f"[U+{ord(control):04X}]"
    for shown in (plain_text(title), plain(literal(title))):
        assert shown == f"invoice{code}fdp.exe"
        assert not set(shown) & set(BIDI)


def test_right_to_left_letters_and_marks_are_left_as_they_are():
    """Hebrew, Arabic and the left/right marks reorder nothing beyond their own words: not bidi controls."""
    for text in ("שלום עולם", "مرحبا", "abc\u200fdef\u200e", "Ａ１"):
        assert plain_text(text) == text and plain(literal(text)) == text


def test_the_markdown_export_shows_a_hostile_title_with_its_codes():
    from memstore.transfer import to_markdown

    settings = {"memory_type": "buffer", "window_turns": 5, "max_tokens": 1000}
    conversation = {"title": "a\u202eb", "settings": settings, "created_at": "2026-01-01T00:00:00", "messages": []}
    shown = to_markdown({"format": "memorylab.conversations/1", "conversations": [conversation]})
    assert "\u202e" not in shown and plain(shown.splitlines()[0]) == "# a[U+202E]b"
