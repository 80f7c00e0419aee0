"""The annotator's wait: the time from a keypress to the next item on screen on the Annotate page, in a
real ``streamlit run`` server driven by headless Chromium (issue 21, target: a median of at most 300 ms).

    .venv/bin/python scripts/bench_annotate.py --out runs/bench-annotate [--items 60] [--decisions 40]

A fresh ``PLAYGROUND_HOME`` in a temporary folder holds one queue per image size (``--sizes``, default
28 and 64: 28x28 grey images like the Fashion-MNIST queue, 64x64 RGB like a user's own images sized for
the model), ``--items`` items each with the ten Fashion-MNIST classes (ten correction buttons, the most
the page draws). One server, one Chromium tab per queue, the annotator's name typed in the free name box
(no accounts). For each of ``--decisions`` decisions: wait until no script runs and every image has
loaded, read the item's id under its image, press ``a`` (accept) and wait until a different item's image
has loaded and its caption is visible. The wait is measured in the page, from the keydown event's
timestamp to the first poll (every 5 ms) that sees the new item. The page also records when the rerun
request left, when Streamlit's script started, when the WebSocket message carrying the new item arrived,
when its caption was drawn and when the rerun finished, which splits the wait into its parts; the CPU
time of the server and of Chromium per decision (from ``/proc``) is the work behind it, whatever else
the machine runs. The first ``--warmup`` decisions are discarded. Every decision must be stored exactly
once (the queue's labels, counted in the store).

Writes ``metrics.json`` (``annotate/<size>px/wait_ms/{median,p90,max}``, the parts' medians,
``annotate/<size>px/cpu_ms_per_decision/{server,browser}``, the load average before and after, the CPU
count) and ``report.md`` to ``--out``; exits 1 when a check fails. On a busy machine the waits are upper
bounds: the report says so when the load average exceeds the CPU count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playground.store import QueueItem, Store, default_url  # noqa: E402
from tests.apps.test_browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    settle,
    start_streamlit,
    wait_for_http,
)

TARGET_MS = 300.0
TIMELINE = ("sent_ms", "script_started_ms", "item_arrived_ms", "caption_ms", "wait_ms", "script_ms")
PARTS = ("wait_ms", "sent_ms", "script_started_ms", "item_arrived_ms", "caption_ms", "script_ms", "python_ms")
CLASSES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
ACCEPT_KEY = "a"  # apps/views/annotate.py: the Accept button's shortcut

# Installed in every document before the page's own scripts, all on the performance.now() clock: the
# keydown's timestamp, the moments Streamlit's script changes state (its own attribute on the app root),
# the messages the page sends and those it receives, with the item ids each carries.
RECORDER = """
const fresh = (key) => ({key: key, states: [], caption: null, sent: [], received: []});
window.__bench = fresh(null);
document.addEventListener('keydown', (e) => { window.__bench = fresh(e.timeStamp); }, true);
new MutationObserver((records) => {
  for (const r of records) {
    window.__bench.states.push([r.target.getAttribute('data-test-script-state'), performance.now()]);
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-test-script-state']});
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (e) => {
      if (window.__bench.key === null || !(e.data instanceof ArrayBuffer)) return;
      const ids = new TextDecoder('latin1').decode(e.data).match(/\\d+px-item-\\d+/g) || [];
      window.__bench.received.push([performance.now(), ids]);
    });
  }
  send(data) {
    if (window.__bench.key !== null) window.__bench.sent.push(performance.now());
    return super.send(data);
  }
};
"""

# True once an item other than ``old`` is on screen: its caption visible and its image loaded.
NEXT_ITEM = """
(old) => {
  for (const box of document.querySelectorAll('[data-testid="stImage"]')) {
    const caption = box.querySelector('[data-testid="stImageCaption"]');
    const text = caption ? caption.textContent.trim() : '';
    if (!text || text === old || caption.getBoundingClientRect().height === 0) continue;
    if (window.__bench.caption === null) window.__bench.caption = performance.now();
    const img = box.querySelector('img');
    if (img && img.complete && img.naturalWidth > 0) return {id: text, at: performance.now()};
  }
  return false;
}
"""


def ring(radius: float, size: int) -> np.ndarray:
    """A soft ring on black, as a (size, size) float image in [0, 1]."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    return np.clip(1.5 - np.abs(np.hypot(yy, xx) - radius), 0, 1)


def make_image(i: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """28 px: a grey float ring (as the browser test's queue); larger: an RGB uint8 photo-like image."""
    if size == 28:
        return ring(4 + (i % 8) * 1.2, size)
    colours = rng.integers(0, 256, 3)
    image = ring(size / 8 + (i % 8) * size / 24, size)[..., None] * colours
    noise = rng.normal(0, 24, (size, size, 3))  # texture, so the PNG does not compress to nothing
    return np.clip(image + 60 + noise, 0, 255).astype(np.uint8)


def seed_queue(store: Store, queue: str, count: int, size: int) -> None:
    """``count`` items of ``size`` px; higher ids are more uncertain (reviewed first)."""
    rng = np.random.default_rng(size)
    items = [
        QueueItem(
            f"{size}px-item-{i}",
            make_image(i, size, rng),
            rng.dirichlet(np.ones(len(CLASSES))),
            uncertainty=0.01 * (i + 1),
            disagreement=float(rng.random()),
            reason="ood" if i % 7 == 0 else "uncertain",
            class_names=CLASSES,
        )
        for i in range(count)
    ]
    store.enqueue(queue, items, model="bench")


def open_queue(browser, url: str, queue: str, annotator: str):
    """A tab on the Annotate page of ``queue`` with the name typed in; keys then go to the page."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.add_init_script(RECORDER)
    page.goto(f"{url}/annotate?queue={queue}")
    name = page.get_by_role("textbox", name="Your name")
    name.fill(annotator)
    name.press("Enter")
    expect(page.get_by_test_id("stImage").first).to_be_visible(timeout=120_000)
    settle(page)
    page.get_by_role("heading", name="Annotate").click()  # keys go to the page, not the name field
    expect(name).not_to_be_focused()
    return page


def one_decision(page) -> dict:
    """Once the page is idle, press the accept key; when the next item is on screen, its timings (ms)."""
    settle(page)
    old = page.get_by_test_id("stImageCaption").first.inner_text().strip()
    began = time.perf_counter()
    page.keyboard.press(ACCEPT_KEY)
    shown = page.wait_for_function(NEXT_ITEM, arg=old, polling=5, timeout=120_000).json_value()
    python_ms = 1000 * (time.perf_counter() - began)
    record = page.evaluate("window.__bench")
    key = record["key"]
    running = [t for state, t in record["states"] if state == "running"]
    delta = [t for t, ids in record["received"] if shown["id"] in ids]
    return {
        "item": old,
        "next": shown["id"],
        "wait_ms": shown["at"] - key,
        "sent_ms": record["sent"][0] - key if record["sent"] else float("nan"),  # the rerun request left
        "script_started_ms": running[0] - key if running else float("nan"),  # the server began the rerun
        "item_arrived_ms": delta[0] - key if delta else float("nan"),  # the new item's message arrived
        "caption_ms": record["caption"] - key,  # its caption was drawn (its image not yet loaded)
        "python_ms": python_ms,  # the same wait seen from Playwright (adds its round trips)
    }


def script_ms(page) -> float:
    """How long the rerun after the last key ran, start to finish, as the page saw it (ms)."""
    settle(page)
    states = page.evaluate("window.__bench.states")
    running = [t for state, t in states if state == "running"]
    stopped = [t for state, t in states if state == "notRunning" and running and t > running[0]]
    return stopped[-1] - running[0] if stopped else float("nan")


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the server (with its children) and by Chromium's processes, from
    ``/proc`` (Linux): work done whatever else the machine runs, unlike the waits."""
    parents, usage = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process has gone
            continue
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        usage[pid] = (name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))

    def descends(pid: int, root: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 0)
        return False

    totals = {"server": 0.0, "browser": 0.0}
    for pid, (name, seconds) in usage.items():
        if descends(pid, server_pid):
            totals["server"] += seconds
        elif "chrom" in name and descends(pid, os.getpid()):
            totals["browser"] += seconds
    return totals


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def bench_queue(browser, url: str, queue: str, args, server_pid: int) -> tuple[list[dict], dict]:
    """The timed decisions after the warm-up, and the CPU milliseconds per decision after it."""
    page = open_queue(browser, url, queue, f"bench-{queue}")
    rows = []
    for index in range(args.decisions):
        if index == args.warmup:
            before = cpu_seconds(server_pid)
        row = one_decision(page)
        row["script_ms"] = script_ms(page)
        rows.append(row)
        print(f"[bench] {queue}: {row['item']} -> {row['next']} {row['wait_ms']:.0f} ms", file=sys.stderr)
    after, timed = cpu_seconds(server_pid), args.decisions - args.warmup
    cpu = {f"cpu_ms_per_decision/{k}": 1000 * (after[k] - before[k]) / timed for k in after}
    errors = page.locator('[data-testid="stException"]').count()
    page.close()
    if errors:
        raise RuntimeError(f"the Annotate page showed {errors} exception(s) on {queue}")
    return rows[args.warmup :], cpu


def summarise(size: int, rows: list[dict], cpu: dict) -> dict[str, float]:
    prefix = f"annotate/{size}px"
    metrics = {}
    for part in PARTS:
        values = [r[part] for r in rows if np.isfinite(r[part])]
        metrics[f"{prefix}/{part}/median"] = statistics.median(values) if values else float("nan")
        if part == "wait_ms":
            metrics[f"{prefix}/{part}/p90"] = percentile(values, 90)
            metrics[f"{prefix}/{part}/max"] = max(values)
    metrics.update({f"{prefix}/{name}": value for name, value in cpu.items()})
    metrics[f"{prefix}/decisions_timed"] = len(rows)
    return metrics


def stored_checks(store: Store, queue: str, decisions: int, shown: list[str]) -> dict[str, int]:
    """Each decision stored exactly once: labels minus decisions, items labelled twice, items timed but
    not stored (all 0)."""
    labels = store.labels(queue)
    ids = [row["external_id"] for row in labels]
    return {
        "stored_minus_decisions": len(labels) - decisions,
        "items_decided_twice": len(ids) - len(set(ids)),
        "shown_but_not_stored": len(set(shown) - set(ids)),
    }


def report_text(metrics: dict, context: dict, sizes: list[int]) -> str:
    lines = [
        "# The annotator's wait\n",
        f"Keypress (accept) to the next item on screen (caption visible, image loaded) on the Annotate page, "
        f"headless Chromium, one `streamlit run` server; {context['decisions']} decisions per queue, the "
        f"first {context['warmup']} discarded, {context['items']} items of 10 classes. "
        f"{context['cpus']} CPUs; load average {context['load_before'][0]:.1f} before, "
        f"{context['load_after'][0]:.1f} after.\n",
        "| image | median ms | p90 ms | max ms | target ≤ 300 ms |",
        "|---|---|---|---|---|",
    ]
    parts = [
        "\nWhere the wait goes (medians, ms after the keydown): the rerun request sent · the server's script "
        "started · the message with the new item arrived · its caption drawn · its image loaded; and the "
        "whole rerun, start to finish, as the page saw it. Then the CPU time one decision costs (mean, "
        "ms): the server (Streamlit) and Chromium (all its processes), whatever else the machine runs.\n",
        "| image | sent | script started | item arrived | caption drawn | image loaded | whole rerun "
        "| server CPU | browser CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        m = {k.removeprefix(f"annotate/{size}px/"): v for k, v in metrics.items() if f"/{size}px/" in k}
        met = "met" if m["wait_ms/median"] <= TARGET_MS else "NOT met"
        lines.append(
            f"| {size}x{size} | {m['wait_ms/median']:.0f} | {m['wait_ms/p90']:.0f} | {m['wait_ms/max']:.0f} "
            f"| {met} |"
        )
        parts.append(
            f"| {size}x{size} | "
            + " | ".join(f"{m[f'{part}/median']:.0f}" for part in TIMELINE)
            + f" | {m['cpu_ms_per_decision/server']:.0f} | {m['cpu_ms_per_decision/browser']:.0f} |"
        )
    lines += parts
    if context["load_before"][0] > context["cpus"]:
        lines.append(
            f"\nThe machine was busy (load {context['load_before'][0]:.1f} on {context['cpus']} CPUs): "
            "the figures are upper bounds for an idle machine."
        )
    lines.append(
        f"\nStore checks (all 0 when every decision was stored exactly once): {context['checks']}.\n"
    )
    return "\n".join(lines)


def run(args, home: Path) -> tuple[dict, dict]:
    from playwright.sync_api import expect, sync_playwright

    store = Store(default_url(home))
    queues = {size: f"bench-{size}px" for size in args.sizes}
    for size, queue in queues.items():
        seed_queue(store, queue, args.items, size)
    env = {**os.environ, "PLAYGROUND_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("PLAYGROUND_REFERENCE", None)
    server = start_streamlit(env, args.port, output=subprocess.DEVNULL)
    metrics, checks = {}, {}
    try:
        url = f"http://127.0.0.1:{args.port}"
        wait_for_http(f"{url}/_stcore/health", server)
        expect.set_options(timeout=120_000)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                for size, queue in queues.items():
                    rows, cpu = bench_queue(browser, url, queue, args, server.pid)
                    metrics.update(summarise(size, rows, cpu))
                    shown = [r["item"] for r in rows]
                    checks[f"{size}px"] = stored_checks(store, queue, args.decisions, shown)
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        store.close()
    return metrics, checks


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--decisions", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3, help="first decisions discarded")
    parser.add_argument("--sizes", default="28,64", help="comma-separated image sizes in pixels")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.port = args.port or free_port()
    if args.decisions <= args.warmup or args.decisions > args.items:
        parser.error("need warmup < decisions <= items")
    os.environ.pop("PLAYGROUND_DB", None)  # a fresh SQLite store, never a configured server
    args.out.mkdir(parents=True, exist_ok=True)
    context = {"cpus": os.cpu_count(), "load_before": os.getloadavg(), **vars(args)}
    context["out"] = str(args.out)
    with tempfile.TemporaryDirectory() as folder:
        metrics, checks = run(args, Path(folder) / "runs")
    context.update(load_after=os.getloadavg(), checks=checks)
    passed = all(value == 0 for by_size in checks.values() for value in by_size.values())
    units = {name: "ms" if "_ms" in name else "" for name in metrics}
    (args.out / "metrics.json").write_text(
        json.dumps(
            {"metrics": metrics, "units": units, "checks_passed": passed, "context": context}, indent=1
        )
    )
    report = report_text(metrics, context, args.sizes)
    (args.out / "report.md").write_text(report)
    print(report, end="")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
