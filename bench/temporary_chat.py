"""What a temporary chat costs: opening one (a private in-memory SQLite copied from a template), a turn in it,
and a Compare replay of a bundled lesson through every memory type (each type in a scratch store of its own).

    python bench/temporary_chat.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memstore import MEMORY_TYPES, Chat, FactSet, MemorySettings, SqlStore  # noqa: E402
from memstore.lessons import load_lessons  # noqa: E402
from memstore.llm.scripted import ScriptedClient  # noqa: E402
from memstore.replay import replay  # noqa: E402


def median_ms(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    SqlStore.in_memory().close()  # the first one migrates the template (once per process)

    def open_chat() -> None:
        with SqlStore.in_memory() as store:
            Chat(store, ScriptedClient(), user_id="u").new_conversation()

    store = SqlStore.in_memory()
    chat = Chat(store, ScriptedClient(), user_id="u")
    conv = chat.new_conversation(settings=MemorySettings("window", 3))

    def turn() -> None:
        list(chat.send(conv.id, "hello there, a short message", FactSet()).stream())

    lesson = load_lessons()[0]
    settings = [MemorySettings(name, lesson.window_turns, lesson.max_tokens) for name in MEMORY_TYPES]
    print(f"open a temporary chat: {median_ms(open_chat, 200):.2f} ms (median of 200)")
    print(f"a window turn in it: {median_ms(turn, 200):.2f} ms (median of 200)")
    replay_ms = median_ms(lambda: replay(lesson.turns, settings, ScriptedClient(), user_id="u"), 5)
    print(f"replay of '{lesson.slug}' ({len(lesson.turns)} turns x {len(settings)} types): {replay_ms:.1f} ms")
    store.close()


if __name__ == "__main__":
    main()
