"""What memory does to the answers: the bundled recall set through every memory type, with a real model.

For each type: how often the fact reached the model (read from the exact request in the ledger) and how
often the answer contained it. The model is the configured one (OPENAI_API_KEY, or OPENAI_BASE_URL and
OPENAI_MODEL), else the bundled SmolLM2-135M-Instruct; answers are greedy (temperature 0).

    python bench/recall.py                   # every case, every memory type
    python bench/recall.py --smoke           # one fact said in the chat, one preference (CI)
    python bench/recall.py --json out.json   # also write every result
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memstore import MEMORY_TYPES, MemoryLabError, Settings, client_from_settings  # noqa: E402
from memstore.embeddings import embedder_from_settings  # noqa: E402
from memstore.recall_check import (  # noqa: E402
    ANSWER_PARAMS,
    KIND_LABELS,
    CaseResult,
    RecallCase,
    RecallSet,
    bundled_recall_set,
    run_recall,
    tally,
)


def smoke_cases(recall_set: RecallSet) -> list[RecallCase]:
    """The first fact said in the chat and the first fact from a store: both paths, quickly."""
    chat = next(c for c in recall_set.cases if c.kind == "chat")
    stored = next(c for c in recall_set.cases if c.kind != "chat")
    return [chat, stored]


def fraction(part: int, whole: int) -> str:
    return f"{part}/{whole}"


def markdown(
    results: list[CaseResult], *, model: str, provider: str, cases: int, run_s: float, recall_set: RecallSet
) -> str:
    """The tables: one row per memory type, then one per kind of fact, then the timing."""
    types = len({r.memory_type for r in results})
    out = [
        f"Recall set: {cases} cases × {types} memory types · model {model} ({provider}) · "
        f"window k={recall_set.window_turns}, token limit {recall_set.max_tokens}, "
        f"recall top {recall_set.recall_turns} · answers at temperature {ANSWER_PARAMS['temperature']}, "
        f"at most {ANSWER_PARAMS['max_tokens']} tokens\n",
        "| memory type | fact reached the model | answer contained it | had it, did not use it | seconds |",
        "|---|---|---|---|---|",
    ]
    for t in tally(results, lambda r: r.memory_type):
        out.append(
            f"| {t.label} | {fraction(t.reached_count, t.total_count)} | "
            f"{fraction(t.answered_count, t.total_count)} | {t.unused_count} | {t.elapsed_s:.1f} |"
        )
    out += [
        "",
        "| where the fact was given | cases × types | fact reached the model | answer contained it |",
        "|---|---|---|---|",
    ]
    for t in tally(results, lambda r: r.kind):
        out.append(
            f"| {KIND_LABELS[t.label]} | {t.total_count} | {fraction(t.reached_count, t.total_count)} | "
            f"{fraction(t.answered_count, t.total_count)} |"
        )
    answer_ms = sorted(r.answer_ms for r in results)
    errors = sum(r.error is not None for r in results)
    out += [
        "",
        f"Run time {run_s:.1f} s for {len(results)} case-and-type runs (each replays its turns, with the "
        f"memory's own model calls, then asks the question); question calls median "
        f"{answer_ms[len(answer_ms) // 2] / 1000:.2f} s."
        + (f" {errors} question calls failed; their answers count as not containing the fact." if errors else ""),
    ]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="two cases only (one chat fact, one stored fact)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every result to this file")
    parser.add_argument("--types", help="comma-separated memory types (default: all)")
    args = parser.parse_args()
    for name in ("httpx", "httpx2"):  # a request log line per call would bury the progress lines
        logging.getLogger(name).setLevel(logging.WARNING)
    started = time.perf_counter()
    try:
        settings = Settings.from_env()
        recall_set = bundled_recall_set()
        client = client_from_settings(settings)
        embedder = embedder_from_settings(
            settings.embeddings_model,
            api_key=settings.api_key,
            base_url=settings.base_url,
            timeout_s=settings.timeout_s,
        )
        cases = smoke_cases(recall_set) if args.smoke else list(recall_set.cases)
        types = args.types.split(",") if args.types else list(MEMORY_TYPES)
        done = [0]
        total = len(cases) * len(types)

        def progress(result: CaseResult) -> None:
            done[0] += 1
            print(
                f"[{done[0]}/{total}] {result.case_id} · {result.memory_type}: "
                f"reached {'yes' if result.reached else 'no'}, answered {'yes' if result.answered else 'no'}"
                f" ({result.elapsed_ms / 1000:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

        results = run_recall(recall_set, client, memory_types=types, cases=cases, embedder=embedder, on_result=progress)
    except MemoryLabError as exc:
        print(f"The recall check could not run: {exc}", file=sys.stderr)
        return 2
    run_s = time.perf_counter() - started
    print(
        markdown(
            results, model=client.model, provider=client.provider, cases=len(cases), run_s=run_s, recall_set=recall_set
        )
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "model": client.model,
                    "provider": client.provider,
                    "run_seconds": round(run_s, 2),
                    "settings": {
                        "window_turns": recall_set.window_turns,
                        "max_tokens": recall_set.max_tokens,
                        "recall_turns": recall_set.recall_turns,
                        "answer_params": ANSWER_PARAMS,
                    },
                    "results": [asdict(r) | {"outcome": r.outcome} for r in results],
                },
                indent=1,
                ensure_ascii=False,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
