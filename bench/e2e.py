"""What a user feels, in a real browser: Memory Lab beside LangChain's Streamlit memory demo, in one run.

    pip install -r bench/requirements.txt
    python bench/e2e.py            # 10 to 100,000 stored messages; writes bench/e2e-results.md and docs/e2e.png
    python bench/e2e.py --smoke    # 10 messages, one sample of each (CI: asserts that it works, not how fast)

Both apps run under `streamlit run` against the same instant fake OpenAI server on 127.0.0.1 and are
driven by Debian's headless Chromium. Times come from the page itself (a MutationObserver on the
app's script state and on the chat bubbles), measured from Enter or from navigation start:
  cold open → idle     a new browser session opens the app until the script has finished
  Enter → first token  until the reply's first word is on screen
  Enter → idle         until the reply is complete and the app has stopped running
Server CPU and RSS come from /proc for each app's process. Memory Lab and the demo are measured in
alternation, sample by sample, so both meet the same moments of a busy machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memstore import MemorySettings, NewMessage, SqlStore  # noqa: E402
from tests.openai_server import FakeOpenAIServer  # noqa: E402
from tests.streamlit_server import CHROMIUM, CHROMIUM_ARGS, run_streamlit  # noqa: E402

MESSAGE = (
    "Memory Lab stores every message and reads back only what the memory needs; this sentence is "
    "padding so that a message is about two hundred characters long, like a real chat turn. "
)[:200]
SETTLE_S = 0.8  # the app counts as idle once its script has not run for this long
TURN_TIMEOUT_S = 240.0
ANCHOR_MAX_MESSAGES = 10_000  # the demo redraws and resends everything: larger sizes take minutes per turn

# Recorded in the page: script-state changes, Enter, and the first word of the reply to the marked message.
PROBE = """
window.__bench = {states: [], enterAt: null, marker: null, firstToken: null};
const watch = () => {
  const b = window.__bench;
  const app = document.querySelector('[data-testid=stApp]');
  if (app) {
    const s = app.getAttribute('data-test-script-state');
    if (!b.states.length || b.states[b.states.length - 1][1] !== s) b.states.push([performance.now(), s]);
  }
  if (b.marker && b.firstToken === null) {
    const els = document.querySelectorAll('[data-testid=stChatMessageContent]');
    const n = els.length;
    if (n >= 2 && els[n - 1].textContent.includes('echo:') && els[n - 2].textContent.includes(b.marker)) {
      b.firstToken = performance.now();
    }
  }
};
new MutationObserver(watch).observe(document, {subtree: true, childList: true, characterData: true,
  attributes: true, attributeFilter: ['data-test-script-state']});
document.addEventListener('keydown', e => { if (e.key === 'Enter') window.__bench.enterAt = performance.now(); }, true);
"""


@dataclass
class App:
    """One `streamlit run` process and how to read its CPU time and memory."""

    name: str
    url: str
    proc: subprocess.Popen

    def cpu_ms(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextmanager
def serve(name: str, script: str, folder: Path, env: dict[str, str], checkout: Path = ROOT):
    """`streamlit run script` in `checkout` with that checkout's own environment (.venv when it has one)."""
    python = checkout / ".venv" / "bin" / "python" if checkout != ROOT else Path(sys.executable)
    with run_streamlit(python, script, checkout, {**os.environ, **env}, folder / f"{name}.log") as (url, proc):
        yield App(name, url, proc)


@dataclass
class Samples:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        found = self.values.get(key)
        return statistics.median(found) if found else float("nan")

    def p90(self, key: str) -> float:
        found = sorted(self.values.get(key) or [float("nan")])
        return found[min(len(found) - 1, round(0.9 * (len(found) - 1)))]


def wait_idle(page, since: float, timeout_s: float = TURN_TIMEOUT_S) -> float:
    """Page time (ms) when the script last stopped running, once it has stayed stopped for SETTLE_S."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = page.evaluate(
            "since => { const s = window.__bench.states; const last = s[s.length - 1];"
            " return last ? [last[0], last[1], performance.now(), s.some(x => x[0] > since)] : null; }",
            since,
        )
        if state and state[1] == "notRunning" and state[3] and state[2] - state[0] >= SETTLE_S * 1000:
            return float(state[0])
        time.sleep(0.05)
    raise TimeoutError(f"the app did not become idle within {timeout_s:.0f} s")


def new_session(browser, app: App):
    """A fresh browser session (its own Streamlit session) with the probe installed."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    context.set_default_timeout(TURN_TIMEOUT_S * 1000)
    context.add_init_script(PROBE)
    return context, context.new_page()


def cold_open(browser, app: App) -> tuple[object, object, float]:
    context, page = new_session(browser, app)
    page.goto(app.url)
    page.get_by_test_id("stChatInputTextArea").wait_for()
    return context, page, wait_idle(page, since=0.0)


def send(page, marker: str) -> tuple[float, float]:
    """Type a marked message, press Enter; (Enter → first token, Enter → idle) in ms."""
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(f"{marker} {MESSAGE}")
    page.evaluate("m => { window.__bench.marker = m; window.__bench.firstToken = null; }", marker)
    box.press("Enter")
    enter = page.evaluate("() => window.__bench.enterAt")
    idle = wait_idle(page, since=enter)
    deadline = time.monotonic() + TURN_TIMEOUT_S
    while (first := page.evaluate("() => window.__bench.firstToken")) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("no reply appeared")
        time.sleep(0.05)
    return first - enter, idle - enter


def idle_rerun(page, app: App) -> tuple[float, float]:
    """A rerun that changes nothing (the "r" key): (wall ms to idle, server CPU ms)."""
    page.get_by_test_id("stApp").click(position={"x": 5, "y": 5})
    cpu = app.cpu_ms()
    started = page.evaluate("() => performance.now()")
    page.keyboard.press("r")
    idle = wait_idle(page, since=started)
    return idle - started, app.cpu_ms() - cpu


def switch_memory_type(page) -> float:
    """Memory Lab only: pick another memory type in the sidebar; ms until the app is idle again."""
    box = page.get_by_test_id("stSidebar").get_by_label("Memory type")
    box.click()
    current = box.input_value() if box.evaluate("e => e.tagName") == "INPUT" else ""
    options = page.get_by_role("option")
    target = next(i for i in range(options.count()) if options.nth(i).inner_text().strip() not in ("", current))
    started = page.evaluate("() => performance.now()")
    options.nth(target).click()
    return wait_idle(page, since=started) - started


def seed_memory_lab(url: str, size: int) -> None:
    store = SqlStore.open(url)
    conv = store.create_conversation("local", f"{size:,} stored messages", MemorySettings("window", 5))
    for start in range(0, size, 10_000):
        store.import_messages(
            "local",
            conv.id,
            [
                NewMessage("user" if i % 2 == 0 else "assistant", MESSAGE, 40, "o200k_base")
                for i in range(start, min(size, start + 10_000))
            ],
        )
    store.close()


def concurrent(browser, app: App, sessions: int, turns: int, prepare: Callable | None) -> tuple[float, float]:
    """`sessions` browser sessions sending `turns` messages each, all at once: (turns/s, p90 Enter → idle ms)."""
    pages = []
    for _ in range(sessions):
        context, page, _ = cold_open(browser, app)
        if prepare is not None:
            prepare(page)
        pages.append((context, page))
    left = dict.fromkeys(range(sessions), turns)
    busy: dict[int, float] = {}
    durations: list[float] = []
    started = time.monotonic()
    deadline = started + TURN_TIMEOUT_S * turns
    while (left or busy) and time.monotonic() < deadline:
        for i, (_, page) in enumerate(pages):
            if i in busy:
                state = page.evaluate(
                    "() => { const s = window.__bench.states; const l = s[s.length - 1];"
                    " return [l[0], l[1], performance.now(), window.__bench.firstToken]; }"
                )
                if state[1] == "notRunning" and state[3] is not None and state[2] - state[0] >= SETTLE_S * 1000:
                    durations.append(state[0] - busy.pop(i))
            elif left.get(i):
                left[i] -= 1
                if not left[i]:
                    del left[i]
                box = page.get_by_test_id("stChatInputTextArea")
                marker = f"c{i}t{left.get(i, 0)}x{time.monotonic_ns() % 10**6}"
                box.fill(f"{marker} {MESSAGE}")
                page.evaluate("m => { window.__bench.marker = m; window.__bench.firstToken = null; }", marker)
                box.press("Enter")
                busy[i] = page.evaluate("() => window.__bench.enterAt")
        time.sleep(0.02)
    wall = time.monotonic() - started - SETTLE_S
    for context, _ in pages:
        context.close()
    if left or busy:
        raise TimeoutError("concurrent sessions did not finish")
    ordered = sorted(durations)
    return len(durations) / wall, ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def new_chat(page) -> None:
    """Memory Lab's sessions each open a conversation of their own (one retry: a click can land mid-rerun)."""
    for attempt in range(2):
        started = page.evaluate("() => performance.now()")
        page.get_by_test_id("stSidebar").get_by_role("button", name="New chat").click()
        try:
            wait_idle(page, since=started, timeout_s=30)
            return
        except TimeoutError:
            page.screenshot(path=str(Path(tempfile.gettempdir()) / f"e2e-new-chat-{attempt}.png"))
    raise TimeoutError("New chat did not finish")


def measure_size(
    browser, size: int, samples: int, folder: Path, server: FakeOpenAIServer, results: dict, lab: Path
) -> None:
    db = f"sqlite:///{folder / f'lab{size}.db'}"
    seed_memory_lab(db, size)
    model_env = {"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": server.base_url, "OPENAI_MODEL": "gpt-4o-mini"}
    lab_env = {**model_env, "DATABASE_URL": db, "MEMORYLAB_DATA_DIR": str(folder / f"data{size}")}
    anchor_env = {**model_env, "ANCHOR_SEED_MESSAGES": str(size), "ANCHOR_SEED_TEXT": MESSAGE}
    run_anchor = size <= ANCHOR_MAX_MESSAGES
    with ExitStack() as stack:
        apps = [stack.enter_context(serve("lab", "app.py", folder, lab_env, lab))]
        if run_anchor:
            apps.append(stack.enter_context(serve("anchor", "bench/anchor_app.py", folder, anchor_env)))
        found = Samples()
        anchor_samples = samples if size <= 1_000 else 1
        for sample in range(samples):
            order = apps if sample % 2 == 0 else apps[::-1]
            for app in order:
                if app.name == "anchor" and sample >= anchor_samples:
                    continue
                context, page, opened = cold_open(browser, app)
                found.add(f"{app.name} open", opened)
                cpu = app.cpu_ms()
                first, idle = send(page, f"m{size}s{sample}")
                found.add(f"{app.name} first", first)
                found.add(f"{app.name} idle", idle)
                found.add(f"{app.name} turn cpu", app.cpu_ms() - cpu)
                wall, cpu_ms = idle_rerun(page, app)
                found.add(f"{app.name} rerun", wall)
                found.add(f"{app.name} rerun cpu", cpu_ms)
                if app.name == "lab":
                    found.add("lab switch", switch_memory_type(page))
                found.add(f"{app.name} rss", app.rss_mb())
                context.close()
            print(f"  {size:>7,} msgs, sample {sample + 1}/{samples} done", flush=True)
        results[size] = found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument(
        "--lab-checkout",
        type=Path,
        default=ROOT,
        help="run Memory Lab from this checkout and its .venv (as ./install.sh made it: without the benchmark's "
        "packages, which change what the app's own libraries load)",
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    sizes = args.sizes or ([10] if args.smoke else [10, 1_000, 10_000, 100_000])
    samples = 1 if args.smoke else args.samples
    folder = Path(tempfile.mkdtemp(prefix="memorylab-e2e-"))
    results: dict[int, Samples] = {}
    with FakeOpenAIServer() as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for size in sizes:
            measure_size(browser, size, samples, folder, server, results, args.lab_checkout)
        sessions, turns = (2, 1) if args.smoke else (5, 4)
        db = f"sqlite:///{folder / 'concurrent.db'}"
        model_env = {"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": server.base_url, "OPENAI_MODEL": "gpt-4o-mini"}
        busy: dict[str, tuple[float, float]] = {}
        try:
            with serve("lab", "app.py", folder, {**model_env, "DATABASE_URL": db}, args.lab_checkout) as lab:
                busy["lab"] = concurrent(browser, lab, sessions, turns, new_chat)
            env = {**model_env, "ANCHOR_SEED_MESSAGES": "10"}
            with serve("anchor", "bench/anchor_app.py", folder, env) as anchor:
                busy["anchor"] = concurrent(browser, anchor, sessions, turns, None)
        except TimeoutError as exc:  # report what was measured; say what was not
            print(f"concurrent sessions not measured: {exc}", flush=True)
            if args.smoke:
                raise
        browser.close()
    report = render(results, busy, sessions, turns, samples, smoke=args.smoke, checkout=args.lab_checkout)
    print("\n" + report)
    if not args.smoke:
        (ROOT / "bench" / "e2e-results.md").write_text(report)
        plot(results, ROOT / "docs" / "e2e.png")


ROWS = [
    ("open", "cold open → app idle"),
    ("first", "Enter → first reply token"),
    ("idle", "Enter → full reply, app idle"),
    ("rerun", "a rerun that changes nothing → idle"),
    ("rerun cpu", "server CPU per rerun that changes nothing"),
    ("turn cpu", "server CPU per turn"),
    ("rss", "server RSS after one session and one turn (MB)"),
]


def render(
    results: dict[int, Samples], busy, sessions: int, turns: int, samples: int, *, smoke: bool, checkout: Path
) -> str:
    where = "this checkout's environment"
    if checkout != ROOT:
        where = "a clean install (./install.sh, no benchmark packages)"
    lines = [
        "# End-to-end benchmark: Memory Lab and LangChain's Streamlit memory demo" + (" (smoke run)" if smoke else ""),
        "",
        f"Headless Chromium, an instant fake model, medians of {samples} paired samples (ms unless marked);"
        f" the demo is sampled once above 1,000 messages and not run above {ANCHOR_MAX_MESSAGES:,}."
        f" Memory Lab ran from {where}.",
        "",
        "| stored messages | measure | Memory Lab | LangChain demo | demo / Memory Lab |",
        "|---:|---|---:|---:|---:|",
    ]
    for size, found in results.items():
        for key, label in ROWS:
            lab, anchor = found.median(f"lab {key}"), found.median(f"anchor {key}")
            ratio = anchor / lab if anchor == anchor and lab else float("nan")
            cells = [
                f"{lab:,.0f}",
                "—" if anchor != anchor else f"{anchor:,.0f}",
                "—" if ratio != ratio else f"{ratio:.2f}x",
            ]
            lines.append(f"| {size:,} | {label} | " + " | ".join(cells) + " |")
        lines.append(f"| {size:,} | switch memory type → idle | {found.median('lab switch'):,.0f} | — | — |")
    if "lab" in busy and "anchor" in busy:
        (lab_rate, lab_p90), (anchor_rate, anchor_p90) = busy["lab"], busy["anchor"]
        together = (
            f"{sessions} sessions at once, {turns} turns each (10 messages): Memory Lab {lab_rate:.2f} turns/s, "
            f"p90 Enter → idle {lab_p90:,.0f} ms; the demo {anchor_rate:.2f} turns/s, p90 {anchor_p90:,.0f} ms."
        )
    else:
        together = f"{sessions} sessions at once: not measured in this run (see its output)."
    lines += [
        "",
        together,
        "",
        "Goals, as ratios from this run:",
        "",
    ]
    small = results.get(10)
    if small is not None:
        for key, label in (("idle", "Enter → full reply and idle"), ("open", "cold open")):
            ratio = small.median(f"lab {key}") / small.median(f"anchor {key}")
            lines.append(f"- At 10 messages, {label}: Memory Lab / demo = {ratio:.2f}x (goal at most 1.2x)")
    for size, found in results.items():
        if size >= 10_000 and found.values.get("anchor first"):
            ratio = found.median("anchor first") / found.median("lab first")
            lines.append(
                f"- At {size:,} messages, Enter → first token: demo / Memory Lab = {ratio:,.0f}x (goal at least 50x)"
            )
    firsts = ", ".join(f"{s:,}: {f.median('lab first'):,.0f} ms" for s, f in results.items())
    lines.append(f"- Memory Lab Enter → first token by size: {firsts} (goal at most 200 ms at every size)")
    rss = max(f.median("lab rss") for f in results.values())
    lines.append(f"- Memory Lab server RSS, one session open: up to {rss:,.0f} MB (goal at most 180 MB)")
    return "\n".join(lines) + "\n"


def plot(results: dict[int, Samples], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(results)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for who, style, label in (("lab", "-", "Memory Lab"), ("anchor", "--", "LangChain demo")):
        for key, colour in (("first", "tab:blue"), ("idle", "tab:orange")):
            points = [(s, results[s].median(f"{who} {key}")) for s in sizes]
            points = [(s, v) for s, v in points if v == v]
            what = "first token" if key == "first" else "idle"
            ax.plot(*zip(*points), style, marker="o", color=colour, label=f"{label}: Enter → {what}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("messages stored in the conversation")
    ax.set_ylabel("ms (median, headless Chromium, instant model)")
    ax.set_title("What a user waits for as conversations grow")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
