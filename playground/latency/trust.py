"""Whether a latency benchmark's figures can be trusted: flags for the page (through
:mod:`playground.latency.results`) and for ``report.md`` (:mod:`playground.latency.report`), from the result
rows alone (one per variant and batch size, as ``results.json`` keeps them).

A *latency figure* is one variant's p50 at one batch size, summarised by
:func:`playground.core.timing.measure_latency` from ``iters`` timed calls (``std_ms`` is their standard
deviation). It is flagged when its spread is too wide (``std_ms / p50_ms`` above :data:`SPREAD_LIMIT`) or
when it rests on too few timed calls (``iters`` below :data:`MIN_CALLS`). A *speed-up* (the reference's p50
over a variant's) is flagged when either p50 is. Rows of older runs that lack ``std_ms`` or ``iters`` get
"spread unknown" / "calls unknown" flags rather than a verdict: such a figure cannot be checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

SPREAD_LIMIT = 0.25
"""Largest ``std / p50`` of a trusted latency. On an idle machine with pinned threads the full preset's
figures stay near 0.1-0.15 (a few slow calls from the OS scheduler). Above a quarter of the p50, calls are
being held up by something else (another process, thread oversubscription, frequency changes), and two
variants closer than that spread cannot be ranked. The std, unlike the p50, is pulled up by a few very slow
calls, which is the point: they show the machine was not quiet."""

MIN_CALLS = 30
"""Fewest timed calls behind a trusted latency. With fewer, the p50 is the middle of a handful of calls (its
95% interval spans roughly the 30th to 70th percentile of the calls even at 30) and p99 is just the slowest
call. The recipe's default times at least 50 calls and the full preset 200; the quick preset's 10 are for a
look, not for reporting."""

ADVICE = (
    "For figures you can trust, run the full preset (`playground latency --preset full`: at least 200 calls "
    "and 3 s per figure) or time more calls (`--set bench.min_iters=200`), with the threads pinned "
    "(`--threads 1`, or fewer than the logical cores) on an otherwise idle machine."
)
LATENCY = "p50_ms"  # TrustFlag.figure of a latency
SPEEDUP = "speedup_vs_{}"  # TrustFlag.figure of a speed-up, with the reference's name


class Concern(StrEnum):
    """Why a figure is flagged."""

    WIDE_SPREAD = "wide spread"
    FEW_CALLS = "few calls"
    SPREAD_UNKNOWN = "spread unknown"
    CALLS_UNKNOWN = "calls unknown"
    FLAGGED_INPUT = "from a flagged latency"  # a speed-up over or of a flagged p50


@dataclass(frozen=True)
class TrustFlag:
    """One figure that cannot be trusted: whose, at which batch, which figure (:data:`LATENCY` or a speed-up),
    the concerns, ``reason`` (one line with the numbers) and ``short`` (the same for a table cell)."""

    variant: str
    batch: int
    figure: str
    concerns: tuple[Concern, ...]
    reason: str
    short: str

    @property
    def is_latency(self) -> bool:
        return self.figure == LATENCY


def _number(row: dict, key: str) -> float | None:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _spread(row: dict) -> tuple[Concern | None, str, str]:
    """The spread's concern (None when fine), its reason and its short form."""
    std, p50 = _number(row, "std_ms"), _number(row, "p50_ms")
    if std is None or p50 is None or p50 <= 0:
        missing = "no std_ms recorded" if std is None else "no positive p50 recorded"
        return Concern.SPREAD_UNKNOWN, f"spread unknown ({missing})", "spread unknown"
    ratio = std / p50
    if ratio > SPREAD_LIMIT:
        why = f"std {std:.3g} ms is {ratio:.2f} of the p50 (limit {SPREAD_LIMIT:g})"
        return Concern.WIDE_SPREAD, why, f"std/p50 {ratio:.2f}"
    return None, "", ""


def _calls(row: dict) -> tuple[Concern | None, str, str]:
    """The call count's concern (None when fine), its reason and its short form."""
    calls = _number(row, "iters")
    if calls is None:
        return Concern.CALLS_UNKNOWN, "calls unknown (no iters recorded)", "calls unknown"
    if calls < MIN_CALLS:
        return Concern.FEW_CALLS, f"{calls:.0f} timed calls (fewer than {MIN_CALLS})", f"{calls:.0f} calls"
    return None, "", ""


def latency_flag(row: dict) -> TrustFlag | None:
    """The flag of one row's p50 (None when it can be trusted)."""
    found = [check(row) for check in (_spread, _calls)]
    concerns = tuple(concern for concern, _, _ in found if concern is not None)
    if not concerns:
        return None
    p50 = _number(row, "p50_ms")
    figure = f"p50 {p50:.3g} ms" if p50 is not None else "p50"
    reason = f"{row['variant']} {figure} at batch {row['batch']}: " + "; ".join(r for _, r, _ in found if r)
    short = ", ".join(s for _, _, s in found if s)
    return TrustFlag(str(row["variant"]), int(row["batch"]), LATENCY, concerns, reason, short)


def _speedup_flag(name: str, batch: int, reference: str, flagged: dict[str, TrustFlag]) -> TrustFlag:
    inputs = [(f"{reference}'s", "baseline"), ("its own", "own p50")]
    inputs = [pair for pair, key in zip(inputs, (reference, name), strict=True) if key in flagged]
    whose, parts = (" and ".join(words) for words in zip(*inputs, strict=True))
    reason = f"{name} speed-up over {reference} at batch {batch} rests on a flagged p50 ({whose})"
    short = f"speed-up: flagged {parts}"
    return TrustFlag(name, batch, SPEEDUP.format(reference), (Concern.FLAGGED_INPUT,), reason, short)


def flags_at(rows: list[dict], batch: int, reference: str = "torch_fp32") -> list[TrustFlag]:
    """The flagged latencies at ``batch`` (in row order), then the flagged speed-ups over ``reference``
    (none when ``reference`` was not measured at ``batch``)."""
    shown = [row for row in rows if int(row["batch"]) == batch]
    latencies = [flag for flag in map(latency_flag, shown) if flag is not None]
    flagged = {flag.variant: flag for flag in latencies}
    if reference not in {row["variant"] for row in shown}:
        return latencies
    speedups = [
        _speedup_flag(row["variant"], batch, reference, flagged)
        for row in shown
        if row["variant"] != reference and (reference in flagged or row["variant"] in flagged)
    ]
    return latencies + speedups


def cell(flags: list[TrustFlag], variant: str, with_batch: bool = False) -> str:
    """The trust cell of ``variant``'s table row: "ok", or a warning sign and every flag's short form
    (prefixed with its batch size when the table spans several)."""
    mine = [flag for flag in flags if flag.variant == variant]
    if not mine:
        return "ok"
    return "⚠ " + "; ".join(f"b{flag.batch}: {flag.short}" if with_batch else flag.short for flag in mine)


def batch_line(flags: list[TrustFlag], batch: int) -> str:
    """The flagged figures at ``batch`` in one line: the latencies with their concerns, then the speed-ups."""
    at = [flag for flag in flags if flag.batch == batch]
    latencies = [f"{flag.variant} ({flag.short})" for flag in at if flag.is_latency]
    speedups = [flag for flag in at if not flag.is_latency]
    parts = [f"p50 of {', '.join(latencies)}"] if latencies else []
    if speedups:
        reference = speedups[0].figure.removeprefix(SPEEDUP.format(""))
        baseline = (
            " (the baseline is flagged)" if reference in {f.variant for f in at if f.is_latency} else ""
        )
        parts.append(f"speed-ups over {reference} of {', '.join(f.variant for f in speedups)}{baseline}")
    return f"batch {batch}: " + "; ".join(parts)


def warning(flags: list[TrustFlag]) -> str:
    """Markdown naming every flagged figure (one line per batch size) and how to get trustworthy ones;
    "" when nothing is flagged."""
    if not flags:
        return ""
    batches = sorted({flag.batch for flag in flags})
    lines = "\n".join(f"- {batch_line(flags, batch)}" for batch in batches)
    return (
        f"**{len(flags)} figure(s) cannot be trusted** (spread above {SPREAD_LIMIT:g} of the p50, fewer than "
        f"{MIN_CALLS} timed calls, or not recorded; a speed-up is flagged when either of its latencies is):"
        f"\n\n{lines}\n\n{ADVICE}"
    )
