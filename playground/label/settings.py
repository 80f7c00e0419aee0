"""A labelling project's settings: how it scores, routes and trains (``playground label init --set
key=value``; an existing project takes changes through :func:`playground.label.project.change_settings`,
except the ones its stored images were read with, :data:`FIXED_SETTINGS`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from playground.active.acquisition import SELECTIONS
from playground.active.learner import TrainSpec
from playground.errors import ConfigError

METHODS = ("mc_dropout", "ensemble")
CONSENSUS = ("dawid_skene", "majority")
ACQUISITION_NAMES = ("entropy", "margin", "bald")  # from playground.active.acquisition


@dataclass
class ProjectSettings:
    """How a project scores, routes and trains; ``playground label init --set key=value`` changes them."""

    image_size: int = 64
    channels: int = 3
    method: str = "mc_dropout"  # mc_dropout: one network, S dropout masks; ensemble: M networks
    mc_samples: int = 20
    acquisition: str = "entropy"  # the uncertainty that orders the queue: entropy, margin or bald
    selection: str = "power"  # top: the most uncertain; power: sampled ∝ uncertainty (Kirsch et al. 2023)
    members: int = 3
    alpha: float = 0.05  # certified auto-label error (with probability 1 - delta)
    delta: float = 0.1
    budget: int = 100  # items queued for people per round
    seed_size: int = 50  # the first round's diverse picks, when there is no model yet
    min_calibration: int = 50  # held-out labels needed before anything is auto-labelled
    held_out: float = 0.2
    redundancy: int = 1  # distinct people per item
    consensus: str = "dawid_skene"
    policy: str = "finetune_replay"  # or scratch
    train: TrainSpec = field(default_factory=TrainSpec)

    def __post_init__(self):
        if isinstance(self.train, dict):
            self.train = _from_dict(TrainSpec, self.train, "train")
        checks = {
            "method": self.method in METHODS,
            "acquisition": self.acquisition in ACQUISITION_NAMES,
            "selection": self.selection in SELECTIONS,
            "consensus": self.consensus in CONSENSUS,
            "policy": self.policy in ("finetune_replay", "scratch"),
            "channels": self.channels in (1, 3),
            "image_size": 8 <= self.image_size <= 512,
            "alpha": 0 < self.alpha < 1,
            "delta": 0 < self.delta < 1,
            "held_out": 0 <= self.held_out < 1,
        }
        counts = ("mc_samples", "members", "budget", "seed_size", "min_calibration", "redundancy")
        checks.update({key: getattr(self, key) >= 1 for key in counts})
        bad = [key for key, ok in checks.items() if not ok]
        if bad:
            shown = ", ".join(f"{key}={getattr(self, key)!r}" for key in bad)
            raise ConfigError(
                f"bad project settings: {shown} (methods: {', '.join(METHODS)}; "
                f"acquisition: {', '.join(ACQUISITION_NAMES)}; selection: {', '.join(SELECTIONS)}; "
                f"consensus: {', '.join(CONSENSUS)}; policy: finetune_replay or scratch)"
            )

    @classmethod
    def from_dict(cls, values: dict) -> ProjectSettings:
        return _from_dict(cls, values, "project")


def _from_dict(kind, values: dict, what: str):
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown {what} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return kind(**values)


FIXED_SETTINGS = ("image_size", "channels", "held_out")  # what the stored images and splits were made with
