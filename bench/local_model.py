"""The bundled offline model on this machine: load time, time to first token, tokens per second.

    python bench/local_model.py            # 5 prompts
    python bench/local_model.py --smoke    # 1 prompt (CI)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memstore.llm.local_llama import LocalLlamaClient  # noqa: E402
from memstore.records import ChatMessage  # noqa: E402

PROMPTS = [
    "Explain in three sentences why the sky is blue.",
    "Write a short poem about a lighthouse.",
    "List five tips for learning a new language.",
    "What is the difference between a list and a tuple in Python?",
    "Summarize the plot of a heist movie you invent.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    prompts = PROMPTS[:1] if args.smoke else PROMPTS

    started = time.perf_counter()
    client = LocalLlamaClient()
    load_s = time.perf_counter() - started
    counter = client.counter()
    ttft, rates = [], []
    for prompt in prompts:
        stream = client.stream_chat([ChatMessage("user", prompt)], params={"max_tokens": 200})
        t0 = time.perf_counter()
        first = None
        for _ in stream:
            if first is None:
                first = time.perf_counter() - t0
        total = time.perf_counter() - t0
        tokens = counter.count(stream.text)
        ttft.append(first or total)
        rates.append(tokens / max(total - (first or 0), 1e-9))
    print(f"SmolLM2-135M-Instruct (Q4_1) in llama.cpp, {len(prompts)} prompt(s), up to 200 tokens each\n")
    print("| load | time to first token (median) | tokens/s (median, after the first) |")
    print("|---|---|---|")
    print(f"| {load_s:.2f} s | {statistics.median(ttft) * 1000:.0f} ms | {statistics.median(rates):.0f} |")


if __name__ == "__main__":
    main()
