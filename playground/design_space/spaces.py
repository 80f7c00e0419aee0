"""Design spaces of "Designing Network Design Spaces" (Radosavovic et al., CVPR 2020), at toy size.

A design space is a distribution over :class:`~playground.models.anynet.AnyNetSpec`; sampling it
under a FLOP budget and training each sample briefly gives its error EDF (:mod:`.edf`). The spaces,
each a constrained version of the one before:

- **AnyNetXa**: 4 stages, each with its own depth d_i, width w_i, bottleneck ratio b_i and group
  width g_i;
- **AnyNetXb**: one bottleneck ratio b shared by all stages;
- **AnyNetXc**: b and one group width g shared;
- **AnyNetXd**: as Xc, widths non-decreasing (w_{i+1} ≥ w_i);
- **AnyNetXe**: as Xd, depths non-decreasing too;
- **RegNetX**: widths from a quantised linear function: u_j = w0 + wa·j for block j < d,
  s_j = round(log(u_j / w0) / log(wm)), w_j = w0 · wm^{s_j} rounded to a multiple of 8; the blocks
  of one width form a stage (at most 4 here); b and g shared;
- **RegNetY**: RegNetX with squeeze-excitation (Y blocks).

The toy ranges suit 28×28 images (the paper's ImageNet ranges are about 8× wider): depth per
stage 1–4, widths 8–128, b ∈ {1, 2, 4}, g ∈ {1, 2, 4, 8, 16}; RegNet d 4–16, w0 8–48, wa 4–48,
wm 1.5–3. A sample outside the FLOP budget is drawn again.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from playground.errors import ConfigError
from playground.models.anynet import AnyNetSpec, anynet_flops

STAGES = 4
DEPTHS = (1, 4)
WIDTHS = tuple(range(8, 129, 8))
BOTTLENECKS = (1, 2, 4)
GROUP_WIDTHS = (1, 2, 4, 8, 16)
REGNET = {"depth": (4, 16), "w0": (8, 48), "wa": (4.0, 48.0), "wm": (1.5, 3.0)}
QUANTUM = 8
MAX_DRAWS = 100_000


def _choice(rng: np.random.Generator, values) -> int:
    return int(values[int(rng.integers(len(values)))])


def _anynet(
    rng: np.random.Generator, shared_b: bool, shared_g: bool, rising_w: bool, rising_d: bool
) -> tuple[AnyNetSpec, dict]:
    depths = [int(rng.integers(DEPTHS[0], DEPTHS[1] + 1)) for _ in range(STAGES)]
    widths = [_choice(rng, WIDTHS) for _ in range(STAGES)]
    b = (
        [_choice(rng, BOTTLENECKS)] * STAGES
        if shared_b
        else [_choice(rng, BOTTLENECKS) for _ in range(STAGES)]
    )
    g = (
        [_choice(rng, GROUP_WIDTHS)] * STAGES
        if shared_g
        else [_choice(rng, GROUP_WIDTHS) for _ in range(STAGES)]
    )
    if rising_w:
        widths.sort()
    if rising_d:
        depths.sort()
    spec = AnyNetSpec(depths, widths, b, g)  # widths made compatible with b and g
    return spec, {
        "depth": sum(depths),
        "width_last": spec.widths[-1],
        "bottleneck": b[0],
        "group_width": spec.group_widths[0],
    }


def regnet_stages(depth: int, w0: int, wa: float, wm: float) -> tuple[list[int], list[int]]:
    """(depths, widths) per stage of the quantised linear width function (the paper's eq. 2–4)."""
    u = w0 + wa * np.arange(depth)
    s = np.round(np.log(u / w0) / math.log(wm))
    widths = np.maximum(QUANTUM, np.round(w0 * np.power(wm, s) / QUANTUM) * QUANTUM).astype(int)
    stages, counts = np.unique(widths, return_counts=True)  # widths rise with j, so unique keeps order
    return counts.tolist(), stages.tolist()


def _regnet(rng: np.random.Generator, se: bool) -> tuple[AnyNetSpec, dict] | None:
    depth = int(rng.integers(REGNET["depth"][0], REGNET["depth"][1] + 1))
    w0 = _choice(rng, [w for w in WIDTHS if REGNET["w0"][0] <= w <= REGNET["w0"][1]])
    wa = float(rng.uniform(*REGNET["wa"]))
    wm = float(rng.uniform(*REGNET["wm"]))
    b, g = _choice(rng, BOTTLENECKS), _choice(rng, GROUP_WIDTHS)
    depths, widths = regnet_stages(depth, w0, wa, wm)
    if len(depths) > STAGES:
        return None
    spec = AnyNetSpec(depths, widths, [b] * len(depths), [g] * len(depths), se=se)
    return spec, {"depth": depth, "w0": w0, "wa": wa, "wm": wm, "bottleneck": b, "group_width": g}


SPACES: dict[str, Callable[[np.random.Generator], tuple[AnyNetSpec, dict] | None]] = {
    "anynetxa": lambda rng: _anynet(rng, False, False, False, False),
    "anynetxb": lambda rng: _anynet(rng, True, False, False, False),
    "anynetxc": lambda rng: _anynet(rng, True, True, False, False),
    "anynetxd": lambda rng: _anynet(rng, True, True, True, False),
    "anynetxe": lambda rng: _anynet(rng, True, True, True, True),
    "regnetx": lambda rng: _regnet(rng, se=False),
    "regnety": lambda rng: _regnet(rng, se=True),
}


def sample_space(
    space: str, count: int, flops: tuple[float, float], seed: int = 0, image_size: int = 28
) -> list[tuple[AnyNetSpec, dict]]:
    """``count`` models of ``space`` whose multiply-adds lie in ``flops`` (low, high), each with the
    parameters it was drawn with and its ``flops``; the same list for the same seed."""
    if space not in SPACES:
        raise ConfigError(f"unknown design space {space!r}; known: {', '.join(SPACES)}")
    low, high = flops
    if not 0 < low < high:
        raise ConfigError(f"the FLOP budget must be 0 < low < high, got {flops}")
    rng = np.random.default_rng([seed, list(SPACES).index(space)])
    models: list[tuple[AnyNetSpec, dict]] = []
    for _ in range(MAX_DRAWS):
        drawn = SPACES[space](rng)
        if drawn is None:
            continue
        spec, params = drawn
        cost = anynet_flops(spec, image_size)
        if low <= cost <= high:
            models.append((spec, {**params, "flops": cost}))
            if len(models) == count:
                return models
    raise ConfigError(
        f"{space}: only {len(models)} of {count} models fell in the FLOP budget {low:,.0f}–{high:,.0f} "
        f"in {MAX_DRAWS:,} draws; widen the budget"
    )
