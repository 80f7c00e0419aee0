"""Benchmark the annotation store: decisions per second with concurrent annotator processes, on SQLite
and on PostgreSQL, and a check that nothing was lost or decided twice.

    .venv/bin/python scripts/bench_store.py --pg "$(bash scripts/postgres.sh)"
    .venv/bin/python scripts/bench_store.py --items 2000 --workers 8 --out runs/bench-store
    .venv/bin/python scripts/bench_store.py --backends sqlite          # no server at hand

For each backend the parent enqueues ``--items`` small items into a fresh database (SQLite: a file in
``--out``, WAL, ``synchronous=FULL``; PostgreSQL: a new schema of the ``--pg`` database, or of
``$PLAYGROUND_TEST_PG``, dropped afterwards). ``--workers`` annotator processes (spawned, each with its
own :class:`~playground.store.Store`) start together behind a barrier and each repeats
``lease_next`` + ``submit`` (accept, or a correction for every third item) until the queue is empty.

- ``store/<backend>/decisions_per_s``: items / wall time from the barrier to the last process done;
- ``store/<backend>/decision_ms_p50`` and ``_p95``: one lease plus one submit, as an annotator waits;
- checks, which must all be 0: ``store/<backend>/lost`` (items with no decision), ``duplicated``
  (items with more than one), ``extra_decisions`` (decisions minus items), ``not_done`` (items not
  marked done) and ``worker_errors``.

Writes ``metrics.json`` (``{"metrics", "units", "checks_passed", "context"}``) and ``report.md`` to
``--out``; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# run as a file, the script sees the repository only once REPO is on sys.path
from playground.store import QueueItem, Store  # noqa: E402

QUEUE = "bench"
CLASSES = ["cat", "dog", "bird"]
CHECKS = ("lost", "duplicated", "extra_decisions", "not_done", "worker_errors")


def make_items(n: int) -> list[QueueItem]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        probs = [0.2, 0.2, 0.2]
        probs[i % 3] = 0.6
        image = rng.integers(0, 256, (28, 28), dtype=np.uint8)
        items.append(
            QueueItem(f"item-{i}", image, probs, uncertainty=float(rng.random()), class_names=CLASSES)
        )
    return items


def annotate(url: str, name: str, barrier, results) -> None:
    """A child process: lease and decide items until the queue is empty; report counts and timings."""
    try:
        store = Store(url)
        barrier.wait(timeout=120)
        start, waits, decided = time.time(), [], 0
        while True:
            began = time.perf_counter()
            item = store.lease_next(QUEUE, name)
            if item is None:
                break
            action = "correct" if decided % 3 == 2 else "accept"
            label = (item.predicted + 1) % len(CLASSES) if action == "correct" else None
            store.submit(f"{name}-{decided}", item.escalation_id, name, action, label=label)
            waits.append(time.perf_counter() - began)
            decided += 1
        results.put((name, decided, start, time.time(), waits, ""))
        store.close()
    except Exception:  # noqa: BLE001 - reported to the parent
        results.put((name, 0, 0.0, 0.0, [], traceback.format_exc()))


def audit_counts(store: Store, items: int) -> dict[str, int]:
    """How many items were lost (not decided) or decided more than once, read back from the database."""
    from sqlalchemy import func, select

    from playground.store_schema import decisions, escalations

    def work(conn):
        per_item = dict(
            conn.execute(
                select(decisions.c.escalation_id, func.count())
                .where(decisions.c.undone_at.is_(None), decisions.c.action != "skip")
                .group_by(decisions.c.escalation_id)
            ).all()
        )
        done = conn.execute(select(func.count()).where(escalations.c.status == "done")).scalar()
        return per_item, done

    per_item, done = store.read(work)
    return {
        "lost": items - len(per_item),
        "duplicated": sum(1 for n in per_item.values() if n > 1),
        "extra_decisions": sum(per_item.values()) - items,
        "not_done": items - done,
    }


def run_backend(url: str, items: int, workers: int) -> dict[str, float]:
    """Fill a fresh queue at ``url``, drain it with ``workers`` processes; the backend's metrics."""
    with Store(url) as store:
        store.enqueue(QUEUE, make_items(items))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(target=annotate, args=(url, f"annotator-{k}", barrier, results), daemon=True)
        for k in range(workers)
    ]
    for process in processes:
        process.start()
    reports = []
    for _ in processes:
        reports.append(results.get(timeout=1800))
        if reports[-1][-1]:  # a worker failed: say so now, not after the others have drained the queue
            print(f"[bench] {reports[-1][0]} failed:\n{reports[-1][-1]}", file=sys.stderr, flush=True)
    for process in processes:
        process.join(timeout=60)
    errors = [error for *_, error in reports if error]
    waits = sorted(1000 * w for report in reports for w in report[4])
    wall = max(r[3] for r in reports) - min(r[2] for r in reports if r[2])
    with Store(url) as store:
        checks = audit_counts(store, items)
    checks["worker_errors"] = len(errors)
    decided = sum(r[1] for r in reports)
    return {
        "decisions_per_s": decided / wall if wall > 0 else 0.0,
        "decision_ms_p50": statistics.median(waits) if waits else float("nan"),
        "decision_ms_p95": waits[int(0.95 * (len(waits) - 1))] if waits else float("nan"),
        "wall_s": wall,
        "decided_by_workers": decided,
        **checks,
    }


@contextmanager
def scratch_schema(server: str):
    """A URL for a new, empty schema of the PostgreSQL database ``server``; the schema is dropped after."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    base = make_url(server)
    admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    options = " ".join(filter(None, [base.query.get("options", ""), f"-csearch_path={schema}"]))
    try:
        yield base.update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextmanager
def backend_url(backend: str, out: Path, server: str):
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(dir=out) as folder:  # on the disk the results go to, not tmpfs
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
    else:
        with scratch_schema(server) as url:
            yield url


def report_text(metrics: dict, args, context: dict) -> str:
    lines = [
        "# Annotation store throughput\n",
        f"{args.items} items drained by {args.workers} annotator processes (lease + submit each), "
        f"{context['cpus']} CPUs, load {context['load_before']:.1f} before the run.\n",
        "| backend | decisions/s | p50 ms | p95 ms | "
        + " | ".join(c.replace("_", " ") for c in CHECKS)
        + " |",
        "|---" * (4 + len(CHECKS)) + "|",
    ]
    for backend in context["backends"]:
        m = {k.split("/")[-1]: v for k, v in metrics.items() if k.startswith(f"store/{backend}/")}
        lines.append(
            f"| {backend} | {m['decisions_per_s']:.0f} | {m['decision_ms_p50']:.1f} | "
            f"{m['decision_ms_p95']:.1f} | " + " | ".join(str(int(m[c])) for c in CHECKS) + " |"
        )
    lines.append(f"\nPostgreSQL server: {context.get('postgresql', 'not run')}.\n")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--pg", default=os.environ.get("PLAYGROUND_TEST_PG", ""), help="PostgreSQL URL")
    parser.add_argument("--out", default="runs/bench-store")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "postgresql" in backends and not args.pg:
        parser.error("PostgreSQL needs --pg URL or $PLAYGROUND_TEST_PG (bash scripts/postgres.sh prints one)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    context = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "backends": backends}
    metrics: dict[str, float] = {}
    for backend in backends:
        with backend_url(backend, out, args.pg) as url:
            if backend == "postgresql":
                with Store(url) as store:
                    context["postgresql"] = store.read(
                        lambda c: c.exec_driver_sql("SHOW server_version").scalar()
                    )
            print(f"[bench] {backend}: {args.items} items, {args.workers} processes", file=sys.stderr)
            for name, value in run_backend(url, args.items, args.workers).items():
                metrics[f"store/{backend}/{name}"] = value
    units = {
        name: "1/s"
        if name.endswith("_per_s")
        else "ms"
        if "_ms_" in name
        else "s"
        if name.endswith("_s")
        else ""
        for name in metrics
    }
    passed = all(metrics[f"store/{b}/{c}"] == 0 for b in backends for c in CHECKS)
    (out / "metrics.json").write_text(
        json.dumps(
            {"metrics": metrics, "units": units, "checks_passed": passed, "context": context}, indent=1
        )
    )
    report = report_text(metrics, args, context)
    (out / "report.md").write_text(report)
    print(report, end="")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
