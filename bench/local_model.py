"""The bundled offline model through llama.cpp's server: load time, time to first token, tokens per second,
with 1 and 2 generation threads, on an idle machine and with other work busy on the cores.

    python bench/local_model.py            # 5 prompts per setting
    python bench/local_model.py --smoke    # 1 prompt, 1 thread, idle (CI)
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memstore.llm import local_client  # noqa: E402
from memstore.llm.local_server import BUNDLED_NAME, LocalModelServer, ServerSpec, bundled_model_path  # noqa: E402
from memstore.records import ChatMessage  # noqa: E402

PROMPTS = [
    "Explain in three sentences why the sky is blue.",
    "Write a short poem about a lighthouse.",
    "List five tips for learning a new language.",
    "What is the difference between a list and a tuple in Python?",
    "Summarize the plot of a heist movie you invent.",
]


def _spin(stop) -> None:
    """Keep one core busy (another app, a browser) until told to stop."""
    while not stop.is_set():
        sum(range(10_000))


def measure(threads: int, prompts: list[str]) -> tuple[float, float, float]:
    """Load seconds, median ms to the first token, median tokens/s after it."""
    started = time.perf_counter()
    server = LocalModelServer(ServerSpec(bundled_model_path(), BUNDLED_NAME, threads=threads))
    load_s = time.perf_counter() - started
    client = local_client(server)
    counter = client.counter()
    ttft, rates = [], []
    try:
        for prompt in prompts:
            stream = client.stream_chat([ChatMessage("user", prompt)], params={"max_tokens": 200, "temperature": 0})
            t0 = time.perf_counter()
            first = None
            for _ in stream:
                if first is None:
                    first = time.perf_counter() - t0
            total = time.perf_counter() - t0
            completion = stream.completion
            tokens = (
                completion.usage.completion_tokens
                if completion and completion.usage.completion_tokens
                else counter.count(stream.text)
            )
            ttft.append(first or total)
            rates.append(tokens / max(total - (first or 0), 1e-9))
    finally:
        server.close()
    return load_s, statistics.median(ttft) * 1000, statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    prompts = PROMPTS[:1] if args.smoke else PROMPTS
    settings = [(1, 0)] if args.smoke else [(1, 0), (2, 0), (1, 1), (2, 1), (1, 2), (2, 2)]
    print(
        f"{BUNDLED_NAME} (Q4_1), llama.cpp server (xllamacpp), {len(prompts)} prompt(s), up to 200 tokens each, "
        f"{multiprocessing.cpu_count()} cores\n"
    )
    print("| threads | other busy processes | load | first token (median) | tokens/s (median, after the first) |")
    print("|---|---|---|---|---|")
    for threads, busy in settings:
        stop = multiprocessing.Event()
        spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
        for spinner in spinners:
            spinner.start()
        try:
            load_s, ttft_ms, rate = measure(threads, prompts)
        finally:
            stop.set()
            for spinner in spinners:
                spinner.join()
        print(f"| {threads} | {busy} | {load_s:.2f} s | {ttft_ms:.0f} ms | {rate:.0f} |", flush=True)


if __name__ == "__main__":
    main()
