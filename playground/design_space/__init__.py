"""Design spaces (Radosavovic et al. 2020): AnyNetX and RegNet sampled under a FLOP budget, compared
by their error EDFs."""

from playground.design_space.edf import (
    BootstrapRange,
    bootstrap_range,
    edf,
    edf_gap,
    edf_gap_range,
    edf_steps,
    edf_summary,
)
from playground.design_space.spaces import SPACES, regnet_stages, sample_space

__all__ = [
    "SPACES",
    "BootstrapRange",
    "bootstrap_range",
    "edf",
    "edf_gap",
    "edf_gap_range",
    "edf_steps",
    "edf_summary",
    "regnet_stages",
    "sample_space",
]
