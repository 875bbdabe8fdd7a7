"""What forgetting costs at scale: one message in a 100,000-message conversation whose ledger holds 20,000 calls.

    python bench/forget.py            # 100,000 messages, 20,000 ledger rows
    python bench/forget.py --smoke    # 2,000 messages, 400 ledger rows (CI)

The ledger is searched in SQL (no row is loaded into Python); peak Python memory is reported.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memstore import ChatMessage, MemorySettings, NewMessage, SqlStore  # noqa: E402
from memstore.records import CallDraft  # noqa: E402

SECRET = "my locker code is tangerine-4417"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    messages, calls = (2_000, 400) if args.smoke else (100_000, 20_000)
    folder = Path(tempfile.mkdtemp())
    store = SqlStore.open(f"sqlite:///{folder / 'forget.db'}")
    conv = store.create_conversation("u", "big", MemorySettings("window", 5))
    texts = [SECRET if i == messages // 2 else f"message number {i} about nothing much" for i in range(messages)]
    for start in range(0, messages, 10_000):
        chunk = texts[start : start + 10_000]
        store.import_messages(
            "u",
            conv.id,
            [NewMessage("user" if (start + i) % 2 == 0 else "assistant", t, 8, "t") for i, t in enumerate(chunk)],
        )
    holding = 0
    for n in range(calls):
        turn = n * (messages // 2) // calls + 1
        carries = n >= calls // 2 and n < calls // 2 + 10  # the ten calls after the secret was said
        holding += carries
        request = [ChatMessage("user", SECRET if carries and i == 0 else f"history {n} {i}") for i in range(10)]
        store.record_call(
            "u",
            CallDraft(
                purpose="chat",
                conversation_id=conv.id,
                turn=turn,
                memory_type="window",
                model="m",
                provider="p",
                host="h",
                params={},
                request=tuple(request),
                reply=f"reply {n}",
            ),
        )
    secret = next(
        m for m in store.turns_between("u", conv.id, messages // 4 + 1, messages // 4 + 1) if m.content == SECRET
    )
    tracemalloc.start()
    started = time.perf_counter()
    plan = store.forget_plan("u", conv.id, secret.id)
    planned = time.perf_counter()
    store.forget_message("u", conv.id, secret.id)
    done = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    assert plan.model_calls == holding, (plan.model_calls, holding)
    print(
        f"{messages:,} messages, {calls:,} ledger rows ({holding} hold the text): "
        f"plan {1000 * (planned - started):.0f} ms, forget {1000 * (done - planned):.0f} ms, "
        f"peak Python memory {peak:.2f} MB"
    )
    save_cost(store, conv.id, secret.id)
    store.close()


def save_cost(store: SqlStore, conversation_id: int, forgotten_id: int) -> None:
    """What a reply's save pays to check the messages its request carried (redacting any forgotten meanwhile)."""
    page = store.page("u", conversation_id, limit=500)
    for carried_count in (0, 20, 500):
        carried = {m.id: m.content or "x" for m in page[-carried_count:]} if carried_count else {}
        if carried_count:
            carried[forgotten_id] = SECRET  # one of them was forgotten while the reply streamed
        best = float("inf")
        for _ in range(20):
            message = store.add_user_message("u", conversation_id, "q", tokens=1, tokenizer="t")
            started = time.perf_counter()
            store.add_reply(
                "u", conversation_id, message.turn, "a", status="complete", tokens=1, tokenizer="t", carried=carried
            )
            best = min(best, time.perf_counter() - started)
        print(f"saving a reply that carried {carried_count} stored messages: {1000 * best:.2f} ms (best of 20)")


if __name__ == "__main__":
    main()
