"""What importing other apps' memory costs: a 1 GB ChatGPT export, 10,000 LangChain sessions, LangGraph threads.

    python bench/import_sources.py            # 1 GB ChatGPT export, 10,000 LangChain sessions, 300 LangGraph threads
    python bench/import_sources.py --smoke    # 5 MB, 200 sessions, 10 threads (CI)
    python bench/import_sources.py --zip-bomb # ChatGPT zips of 131 KB and 1 MB holding one 128 MB and 1 GB reply

Each source is written first (the LangChain rows with LangChain's own message_to_dict, the LangGraph threads by a
real graph with SqliteSaver), then previewed and imported by a fresh process, which reports its time and its peak
resident memory: the measure that says whether the source was streamed or loaded whole.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

QUESTION = "Could you tell me more about the trip we planned, and what I said I wanted to see first? " * 3
ANSWER = "You said you wanted to see the old harbour first, then the museum, and to eat somewhere quiet. " * 9


def write_chatgpt(path: Path, megabytes: int) -> int:
    """A ChatGPT export of about this size, written a conversation at a time (never whole in memory)."""
    from sources import chatgpt_conversation

    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        while out.tell() < megabytes * 1_000_000:
            turns = [(f"{QUESTION} ({count}.{n})", ANSWER) for n in range(20)]
            conv = chatgpt_conversation(f"Trip {count}", turns, conversation_id=f"conv-{count}")
            out.write(("," if count else "") + json.dumps(conv))
            count += 1
        out.write("]")
    return count


def write_zip_bomb(path: Path, reply_megabytes: int) -> None:
    """A deflated ChatGPT export zip: one conversation whose reply is this many MB of one letter, then a fine one."""
    import zipfile

    from sources import chatgpt_conversation

    bomb = chatgpt_conversation("Bomb", [("hi", "@@")], conversation_id="c-bomb")
    fine = chatgpt_conversation("Fine", [("hello", "there")], conversation_id="c-fine")
    head, tail = json.dumps([bomb, fine]).encode().split(b"@@")
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("conversations.json", "w", force_zip64=True) as member,
    ):
        member.write(head)
        for _ in range(reply_megabytes):
            member.write(b"A" * 1_000_000)
        member.write(tail)


def write_langchain(path: Path, sessions: int, turns: int = 5) -> None:
    """A SQLChatMessageHistory table: made by the library, filled with rows in its own format (message_to_dict)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.chat_message_histories import SQLChatMessageHistory
    from langchain_core.messages import AIMessage, HumanMessage, message_to_dict

    SQLChatMessageHistory(session_id="s0", connection=f"sqlite:///{path}").add_messages([HumanMessage("first")])
    with sqlite3.connect(path) as db:
        for s in range(1, sessions):
            rows = []
            for n in range(turns):
                for message in (HumanMessage(f"{QUESTION} {n}"), AIMessage(ANSWER)):
                    rows.append((f"session-{s:05d}", json.dumps(message_to_dict(message))))
            db.executemany("INSERT INTO message_store (session_id, message) VALUES (?, ?)", rows)


def write_langgraph(path: Path, threads: int, turns: int = 5) -> None:
    from sources import langgraph_db

    langgraph_db(
        path,
        {f"thread-{t}": [f"{QUESTION} {n}" for n in range(turns)] for t in range(threads)},
        [ANSWER] * (threads * turns),
    )


def measure(kind: str, location: str) -> dict:
    """Preview and import in this process; peak RSS is this process's own."""
    from memstore import SqlStore
    from memstore.importers import import_source, open_source, preview_source
    from memstore.tokens import counter_for_model

    counter = counter_for_model("gpt-4o-mini")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as folder:
        store = SqlStore.open(f"sqlite:///{folder}/memorylab.db")
        with open_source(kind, location=location) as source:
            started = time.perf_counter()
            lines = list(preview_source(source, store, "u"))
            preview_s = time.perf_counter() - started
            after_preview = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            started = time.perf_counter()
            result = import_source(store, "u", source, counter)
            import_s = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        messages = sum(c.message_count for c in result.created)
        longest = max((len(m.content) for c in result.created for m in store.page("u", c.id, limit=500)), default=0)
        store.close()
    return dict(
        kind=kind,
        source_mb=round(Path(location).stat().st_size / 1e6, 1),
        conversations=len(lines),
        imported=len(result.created),
        messages=messages,
        preview_s=round(preview_s, 1),
        import_s=round(import_s, 1),
        rss_before_mb=round(base),
        rss_peak_preview_mb=round(after_preview),
        rss_peak_mb=round(peak),
        skipped=[(line.title, line.problem) for line in lines if line.problem],
        longest_message_chars=longest,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--zip-bomb", action="store_true", help="ChatGPT zips holding one 128 MB and one 1 GB reply")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    if args.zip_bomb:
        zip_bombs()
        return
    megabytes, sessions, threads = (5, 200, 10) if args.smoke else (1_000, 10_000, 300)
    folder = Path(tempfile.mkdtemp(prefix="import-bench-"))
    sources = []
    started = time.perf_counter()
    count = write_chatgpt(folder / "conversations.json", megabytes)
    print(f"wrote a {megabytes:,} MB ChatGPT export ({count:,} conversations) in {time.perf_counter() - started:.0f} s")
    sources.append(("chatgpt", folder / "conversations.json"))
    started = time.perf_counter()
    write_langchain(folder / "langchain.db", sessions)
    print(f"wrote {sessions:,} LangChain sessions in {time.perf_counter() - started:.0f} s")
    sources.append(("langchain", folder / "langchain.db"))
    started = time.perf_counter()
    write_langgraph(folder / "langgraph.db", threads)
    print(f"wrote {threads:,} LangGraph threads in {time.perf_counter() - started:.0f} s")
    sources.append(("langgraph", folder / "langgraph.db"))
    print("| source | size | conversations | messages imported | preview | import | RSS at start | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, path in sources:
        r = run_measure(kind, path)
        print(
            f"| {kind} | {r['source_mb']:,} MB | {r['conversations']:,} | {r['messages']:,} | {r['preview_s']} s "
            f"| {r['import_s']} s | {r['rss_before_mb']} MB | {r['rss_peak_mb']} MB |"
        )
        assert r["imported"] == r["conversations"], r
    for _kind, path in sources:
        path.unlink()


def run_measure(kind: str, path: Path) -> dict:
    """measure() in a fresh process, so its peak RSS is this source's alone."""
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(path)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        print(out.stderr[-3000:])
        raise SystemExit(f"{kind}: the measuring process failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def zip_bombs() -> None:
    """Issue 24: a 131 KB zip with a 128 MB reply took 46 s to preview, 240 s and +6.5 GB to import."""
    folder = Path(tempfile.mkdtemp(prefix="import-bench-"))
    print("| zip | reply | preview | import | RSS at start | peak RSS | imported | longest stored | why skipped |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for reply_mb in (128, 1_000):
        path = folder / f"bomb-{reply_mb}.zip"
        write_zip_bomb(path, reply_mb)
        r = run_measure("chatgpt", path)
        print(
            f"| {path.stat().st_size / 1e3:,.0f} KB | {reply_mb:,} MB | {r['preview_s']} s | {r['import_s']} s "
            f"| {r['rss_before_mb']} MB | {r['rss_peak_mb']} MB | {r['imported']} of {r['conversations']} "
            f"| {r['longest_message_chars']:,} characters | {'; '.join(p for _, p in r['skipped'])} |"
        )
        path.unlink()


if __name__ == "__main__":
    main()
