"""A separate process that writes turns to a database, for the concurrency and crash tests.

    python tests/writer.py DATABASE_URL CONVERSATION_ID LABEL TURNS
Prints "committed N" after each turn is stored, so a test can kill it between or during turns.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memstore import Chat, FactSet, SqlStore  # noqa: E402
from memstore.llm.scripted import ScriptedClient  # noqa: E402


def main() -> None:
    url, conversation_id, label, turns = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    store = SqlStore.open(url)
    chat = Chat(store, ScriptedClient(), user_id="local")
    for i in range(turns):
        chat.send(conversation_id, f"{label}:{i}", FactSet()).run()
        print(f"committed {i}", flush=True)
    store.close()


if __name__ == "__main__":
    main()
