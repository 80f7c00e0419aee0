"""The fastest variant within a quality budget: ``--max-drop 0.5`` or ``--min-agreement 0.99``.

:func:`pick_variant` takes a benchmark run's measurements (one dict per variant, as
:func:`playground.latency.experiment.measure` returns them: ``accuracy``, ``latency`` a batch sweep of
:class:`~playground.core.timing.LatencyStats`, ...) and names the variant with the lowest p50 latency
at one batch size among those within the budget:

- ``max_drop``: at most that many accuracy *points* (percentage points) below the reference's
  accuracy (``quality_key``, a fraction in the measurements);
- ``min_agreement``: at least that fraction of argmax agreement with the reference
  (``agreement_key``), the quality measure when there is no labelled eval set.

The reference is always within the budget (no drop, full agreement with itself). Ties on p50 go to
the smaller variant (``size_mb`` in the measurements, when present). Every other variant gets a reason
it was not picked: slower, over budget, not measured, or skipped by its builder.
:func:`pick_table` renders every candidate with its status as a Markdown table for the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from playground.core.runs import markdown_table
from playground.errors import ConfigError

PICKED, SLOWER, OVER, UNMEASURED, SKIPPED = "picked", "slower", "over budget", "not measured", "skipped"
STATUS_ORDER = (PICKED, SLOWER, OVER, UNMEASURED, SKIPPED)
EPSILON = 1e-9  # float slack when comparing with the budget


@dataclass(frozen=True)
class Candidate:
    """One variant's standing: its status, p50 at the batch, quality, and why it was not picked."""

    name: str
    status: str
    p50_ms: float | None = None
    quality: float | None = None
    change_points: float | None = None  # accuracy against the reference, in points (max_drop only)
    reason: str = ""


@dataclass(frozen=True)
class Pick:
    """The fastest variant within the budget at ``batch``, and why; ``quality`` is the accuracy
    (``max_drop``) or the argmax agreement with the reference (``min_agreement``)."""

    name: str
    batch: int
    p50_ms: float
    speedup: float  # reference p50 / chosen p50
    quality_key: str
    quality: float
    reference: str
    reference_p50_ms: float
    reference_quality: float
    budget: str  # "within 0.5 points of torch_fp32's accuracy"
    why: str
    rejected: dict[str, str] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)


def check_budget(max_drop: float | None, min_agreement: float | None) -> tuple[str, float]:
    """``("drop", points)`` or ``("agreement", fraction)``; ConfigError unless exactly one is given and
    it is in range. Call it when the config is read, before any timing."""
    if (max_drop is None) == (min_agreement is None):
        raise ConfigError(
            "give exactly one quality budget: max_drop (accuracy points, e.g. 0.5) or min_agreement "
            f"(argmax agreement with the reference, e.g. 0.99); got max_drop={max_drop!r}, "
            f"min_agreement={min_agreement!r}"
        )
    if max_drop is not None:
        if not _is_number(max_drop) or max_drop < 0:
            raise ConfigError(f"max_drop must be a number of accuracy points >= 0, got {max_drop!r}")
        return "drop", float(max_drop)
    if not _is_number(min_agreement) or not 0 < min_agreement <= 1:
        raise ConfigError(f"min_agreement must be a fraction in (0, 1], e.g. 0.99, got {min_agreement!r}")
    return "agreement", float(min_agreement)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value) -> float | None:
    return float(value) if _is_number(value) else None


def p50_at(measurement: dict, batch: int) -> float | None:
    """A variant's p50 (ms) at ``batch`` from its sweep of LatencyStats, or of dicts with str keys as
    results.json keeps them; None when not timed there."""
    sweep = measurement.get("latency") or {}
    stats = next((s for b, s in sweep.items() if str(b) == str(batch)), None)
    p50 = _number(stats.get("p50_ms") if isinstance(stats, dict) else getattr(stats, "p50_ms", None))
    return p50 if p50 is not None and p50 > 0 else None


def _batches(measurements: dict[str, dict]) -> list[int]:
    found = {int(b) for m in measurements.values() for b in (m.get("latency") or {})}
    return sorted(found)


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def _points(value: float) -> str:
    return f"{value:+.2f}".replace("-", "\u2212")


def _reference_figures(measurements, batch, reference, mode, quality_key, skipped) -> tuple[float, float]:
    """The reference's p50 at ``batch`` and quality; ConfigError when either is missing."""
    if reference not in measurements:
        why = f" (skipped: {skipped[reference]})" if reference in skipped else ""
        raise ConfigError(f"the pick needs the reference variant {reference!r}, which did not run{why}")
    p50 = p50_at(measurements[reference], batch)
    if p50 is None:
        measured = ", ".join(map(str, _batches(measurements))) or "none"
        raise ConfigError(f"batch {batch} was not measured; pick one of the measured batches: {measured}")
    if mode == "agreement":
        return p50, 1.0  # the reference agrees with itself
    quality = _number(measurements[reference].get(quality_key))
    if quality is None:
        raise ConfigError(
            f"max_drop needs {reference}'s {quality_key}, which the run did not measure (no eval set with "
            "labels?): give min_agreement instead"
        )
    return p50, quality


def _judge(name, measurement, batch, mode, limit, keys, reference, ref_quality) -> Candidate:
    """A non-reference variant: not measured, over budget, or (status SLOWER for now) eligible."""
    quality_key, agreement_key = keys
    p50 = p50_at(measurement, batch)
    if p50 is None:
        timed = ", ".join(str(b) for b in sorted(int(b) for b in measurement.get("latency") or {}))
        return Candidate(name, UNMEASURED, reason=f"not timed at batch {batch} (timed at: {timed or 'none'})")
    key = agreement_key if mode == "agreement" else quality_key
    quality = _number(measurement.get(key))
    if quality is None:
        return Candidate(name, UNMEASURED, p50, reason=f"no {key} measured, so the budget cannot be checked")
    if mode == "agreement":
        if quality + EPSILON >= limit:
            return Candidate(name, SLOWER, p50, quality)
        reason = (
            f"over budget: argmax agreement {quality:.4f} with {reference}, under the {limit:g} asked "
            f"({_ms(p50)} ms p50)"
        )
        return Candidate(name, OVER, p50, quality, reason=reason)
    change = 100 * (quality - ref_quality)
    if -change <= limit + EPSILON:
        return Candidate(name, SLOWER, p50, quality, change)
    reason = (
        f"over budget: {quality_key} {quality:.4f}, {-change:.2f} points below {reference}'s "
        f"{ref_quality:.4f} (budget {limit:g} points; {_ms(p50)} ms p50)"
    )
    return Candidate(name, OVER, p50, quality, change, reason)


def _size(measurement: dict) -> float:
    size = _number(measurement.get("size_mb"))
    return size if size is not None else math.inf


def _choose(eligible: list[Candidate], measurements: dict) -> tuple[Candidate, list[Candidate]]:
    """The fastest eligible candidate (ties: smaller size, then the listed order) and the others with
    their reason."""
    order = sorted(eligible, key=lambda c: (c.p50_ms, _size(measurements[c.name])))
    best, others = order[0], []
    for c in order[1:]:
        if c.p50_ms > best.p50_ms:
            reason = f"slower: {_ms(c.p50_ms)} ms p50 against {_ms(best.p50_ms)} ms for {best.name}"
        else:
            mine, theirs = _size(measurements[c.name]), _size(measurements[best.name])
            sizes = f": {mine:.3g} MB against {theirs:.3g} MB" if math.isfinite(mine) else ""
            reason = f"as fast as {best.name} ({_ms(c.p50_ms)} ms p50) but not smaller{sizes}"
        others.append(Candidate(c.name, SLOWER, c.p50_ms, c.quality, c.change_points, reason))
    return Candidate(best.name, PICKED, best.p50_ms, best.quality, best.change_points), others


def _budget_text(mode: str, limit: float, reference: str, quality_key: str) -> str:
    if mode == "drop":
        return f"within {limit:g} points of {reference}'s {quality_key}"
    return f"with at least {limit:g} argmax agreement with {reference}"


def _why(best: Candidate, ref: Candidate, batch: int, budget: str, key: str, over: list[Candidate]) -> str:
    """One sentence on the pick, and one on the faster variants over the budget (if any)."""
    if best.name == ref.name:
        text = (
            f"{best.name} itself is the fastest {budget} at batch {batch} ({_ms(best.p50_ms)} ms p50): "
            "no variant within the budget is faster."
        )
    else:
        text = (
            f"{best.name} is the fastest {budget} at batch {batch}: {_ms(best.p50_ms)} ms against "
            f"{_ms(ref.p50_ms)} ms ({ref.p50_ms / best.p50_ms:.2f}\u00d7), "
        )
        if best.change_points is None:  # an agreement budget
            text += f"{key} {best.quality:.4f} with {ref.name}."
        else:
            text += (
                f"{key} {best.quality:.3f} against {ref.quality:.3f} ({_points(best.change_points)} points)."
            )
    faster = sorted((c for c in over if c.p50_ms < best.p50_ms), key=lambda c: c.p50_ms)[:3]
    if faster:
        figures = [
            f"{c.name} ({_ms(c.p50_ms)} ms, "
            + (f"{_points(c.change_points)} points)" if c.change_points is not None else f"{c.quality:.4f})")
            for c in faster
        ]
        text += f" Faster but over budget: {', '.join(figures)}."
    return text


def pick_variant(
    measurements: dict[str, dict],
    *,
    batch: int,
    reference: str = "torch_fp32",
    max_drop: float | None = None,
    min_agreement: float | None = None,
    quality_key: str = "accuracy",
    agreement_key: str = "agreement",
    skipped: dict[str, str] | None = None,
) -> Pick:
    """The variant with the lowest p50 at ``batch`` within the budget (see the module notes).

    ``skipped``: the variants the builders skipped (name -> reason), listed as rejected. ConfigError for
    a budget that is not exactly one of ``max_drop`` / ``min_agreement``, an unmeasured batch, a missing
    reference, or ``max_drop`` without the reference's accuracy."""
    mode, limit = check_budget(max_drop, min_agreement)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ConfigError(f"the pick's batch must be an integer >= 1, got {batch!r}")
    skipped = dict(skipped or {})
    ref_p50, ref_quality = _reference_figures(measurements, batch, reference, mode, quality_key, skipped)
    ref = Candidate(reference, SLOWER, ref_p50, ref_quality, 0.0 if mode == "drop" else None)
    judged = [
        _judge(n, m, batch, mode, limit, (quality_key, agreement_key), reference, ref_quality)
        for n, m in measurements.items()
        if n != reference
    ]
    eligible = [ref] + [c for c in judged if c.status == SLOWER]
    best, others = _choose(eligible, measurements)
    over = [c for c in judged if c.status == OVER]
    left = [c for c in judged if c.status not in (SLOWER, OVER)]
    left += [
        Candidate(n, SKIPPED, reason=f"skipped: {why}") for n, why in skipped.items() if n not in measurements
    ]
    budget = _budget_text(mode, limit, reference, quality_key)
    shown_key = quality_key if mode == "drop" else "argmax agreement"
    candidates = sorted([best, *others, *over, *left], key=_table_order)
    return Pick(
        name=best.name,
        batch=batch,
        p50_ms=best.p50_ms,
        speedup=ref_p50 / best.p50_ms,
        quality_key=quality_key if mode == "drop" else agreement_key,
        quality=best.quality,
        reference=reference,
        reference_p50_ms=ref_p50,
        reference_quality=ref_quality,
        budget=budget,
        why=_why(best, ref, batch, budget, shown_key, over),
        rejected={c.name: c.reason for c in candidates if c.status != PICKED},
        candidates=candidates,
    )


def _table_order(candidate: Candidate) -> tuple:
    p50 = candidate.p50_ms if candidate.p50_ms is not None else math.inf
    return STATUS_ORDER.index(candidate.status), p50


def pick_table(pick: Pick) -> str:
    """Every candidate, the pick first: status, p50 at the batch, speed-up over the reference, quality
    (and, for a drop budget, the change in points), and why it was not picked."""
    drop = any(c.change_points is not None for c in pick.candidates)
    headers = [
        "variant",
        "status",
        f"p50 ms, b{pick.batch}",
        f"speed-up vs {pick.reference}",
        pick.quality_key,
        *(["change (points)"] if drop else []),
        "reason",
    ]
    body = []
    for c in pick.candidates:
        body.append(
            [
                f"**{c.name}**" if c.status == PICKED else c.name,
                c.status,
                _ms(c.p50_ms) if c.p50_ms is not None else "-",
                f"{pick.reference_p50_ms / c.p50_ms:.2f}\u00d7" if c.p50_ms is not None else "-",
                f"{c.quality:.4f}" if c.quality is not None else "-",
                *([_points(c.change_points) if c.change_points is not None else "-"] if drop else []),
                c.reason or ("the pick" if c.status == PICKED else "-"),
            ]
        )
    return markdown_table(headers, body)
