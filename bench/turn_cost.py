"""Per-turn storage and context cost at 100 to 100,000 stored messages: it must stay flat.

Each turn does what the app does around the model call: save the user's message, read the
memory and build the exact payload, save the reply with its ledger row. The model is a
scripted in-process client, so only Memory Lab's own cost is measured.

    python bench/turn_cost.py            # 100, 1,000, 10,000, 100,000 messages
    python bench/turn_cost.py --smoke    # 100 and 1,000, a few turns (CI)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memstore import Chat, FactSet, MemorySettings, NewMessage, SqlStore  # noqa: E402
from memstore.embeddings import WordLlamaEmbedder  # noqa: E402
from memstore.llm.scripted import ScriptedClient  # noqa: E402
from memstore.tokens import counter_for_model  # noqa: E402

MESSAGE = (
    "Memory Lab stores every message and reads back only what the memory needs; this sentence is "
    "padding so that a message is about two hundred characters long, like a real chat turn. "
)[:200]
TYPES = {
    "window (k=5)": MemorySettings("window", window_turns=5),
    "token_window (2,000)": MemorySettings("token_window", max_tokens=2_000),
    "summary": MemorySettings("summary"),
    "summary_buffer (2,000)": MemorySettings("summary_buffer", max_tokens=2_000),
    "retrieval (k=2, top 3)": MemorySettings("retrieval", window_turns=2, recall_turns=3),
}


def seed(store: SqlStore, chat: Chat, size: int) -> int:
    """A conversation holding `size` messages, with summaries already up to date."""
    conv = chat.new_conversation(f"{size} messages")
    tokens = chat.counter.count(MESSAGE)
    batch = 10_000
    for start in range(0, size, batch):
        store.import_messages(
            "local",
            conv.id,
            [
                NewMessage("user" if i % 2 == 0 else "assistant", MESSAGE, tokens, chat.counter.name)
                for i in range(start, min(size, start + batch))
            ],
        )
    last = store.get_conversation("local", conv.id).last_turn
    for kind in ("summary", "summary_buffer"):
        store.add_summary(
            "local",
            conv.id,
            kind,
            "The user and the assistant talked about memory.",
            from_turn=1,
            through_turn=last + 1_000_000,
            tokens=10,
            call=None,
        )
    return conv.id


def measure(chat: Chat, conv_id: int, settings: MemorySettings, turns: int) -> list[float]:
    chat.update_settings(conv_id, settings)
    times = []
    for i in range(turns + 2):
        started = time.perf_counter()
        chat.send(conv_id, f"{MESSAGE} #{i}", FactSet()).run()
        elapsed = (time.perf_counter() - started) * 1000
        if i >= 2:  # the first turns warm caches
            times.append(elapsed)
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="small sizes and few turns (for CI)")
    parser.add_argument("--turns", type=int, default=30)
    args = parser.parse_args()
    sizes = [100, 1_000] if args.smoke else [100, 1_000, 10_000, 100_000]
    turns = 5 if args.smoke else args.turns

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        store = SqlStore.open(f"sqlite:///{folder}/bench.db")
        chat = Chat(
            store,
            ScriptedClient(model="gpt-4o-mini", whole_replies=True, counter=counter_for_model("gpt-4o-mini")),
            user_id="local",
            embedder=WordLlamaEmbedder(),
        )
        for size in sizes:
            conv_id = seed(store, chat, size)
            for name, settings in TYPES.items():
                times = measure(chat, conv_id, settings, turns)
                rows.append((name, size, statistics.median(times), p95(times)))
        store.close()

    print(f"Per-turn cost without the model (SQLite, {turns} turns each; ms)\n")
    print(f"| memory type | {' | '.join(f'{s:,} msgs median / p95' for s in sizes)} | ratio largest/smallest |")
    print(f"|---|{'---|' * len(sizes)}---|")
    for name in TYPES:
        cells = [r for r in rows if r[0] == name]
        ratio = cells[-1][2] / cells[0][2]
        print(f"| {name} | " + " | ".join(f"{c[2]:.2f} / {c[3]:.2f}" for c in cells) + f" | {ratio:.2f} |")


if __name__ == "__main__":
    main()
