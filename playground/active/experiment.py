"""Active learning that escalates uncertain samples to annotators (experiment ``active``).

One run draws a learning curve per acquisition strategy (retraining from scratch each round),
compares the two retraining policies on one strategy (``scratch`` against
``finetune_replay``), then routes a stream of new data through the escalation policy
calibrated to auto-label error ``≤ alpha``, and may send what it escalates to an annotation
queue in the project's database. See :mod:`~playground.active.acquisition`,
:mod:`~playground.active.loop`, :mod:`~playground.active.learner` and
:mod:`~playground.active.escalation`.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from playground.active import report
from playground.active.acquisition import ACQUISITIONS
from playground.active.data import ActiveData, ActiveDataSpec, load_active_data
from playground.active.learner import POLICIES, TrainSpec
from playground.active.loop import LoopHistory, LoopSpec, run_loop
from playground.active.simulate import EscalationOutcome, EscalationSpec, simulate
from playground.core.config import RunConfig
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress
from playground.core.runs import Metrics, Result, RunDir
from playground.core.seeds import runs_root_of
from playground.errors import ConfigError

EXPERIMENT = "active"


@dataclasses.dataclass
class Config(RunConfig):
    name: str = "active"
    # data
    dataset: Literal["fashion_mnist", "digits", "shapes", "folder"] = "fashion_mnist"
    data_root: str = ""
    pool_limit: int = 20000  # unlabelled pool size (0: the whole training set)
    test_limit: int = 3000  # test images for the learning curves; the rest of the test set is the stream
    calibration_size: int = 2000  # labelled split that calibrates the escalation threshold
    ood_sets: list[str] = dataclasses.field(default_factory=lambda: ["digits", "shapes"])
    ood_limit: int = 500  # OOD images per set mixed into the stream
    # the loop
    strategies: list[str] = dataclasses.field(default_factory=lambda: ["random", "entropy", "margin", "bald"])
    initial: int = 20
    query: int = 10
    budget: int = 1000
    pool_subset: int = 2000  # unlabelled samples scored per round (0: all)
    mc_samples: int = 20
    ensemble_members: int = (
        1  # 1: MC dropout; N > 1: scores from a deep ensemble of N networks (N × the training)
    )
    selection: Literal["top", "power"] = "top"  # top-k scores, or sample ∝ score (Kirsch et al. 2023)
    target_accuracy: float = 0.80
    # training each round
    epochs: int = 50
    min_steps: int = 150
    max_steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    width: int = 32
    # retraining policies, compared on one strategy
    policies: list[str] = dataclasses.field(default_factory=lambda: ["scratch", "finetune_replay"])
    policy_strategy: str = "entropy"
    replay: int = 100
    finetune_steps: int = 50
    # escalation
    alpha: float = 0.05
    delta: float = 0.1
    annotator_budget: int = 200
    stream_rounds: int = 5
    knn_k: int = 10
    escalation_strategy: str = ""  # whose final model routes the stream ("": the last strategy)
    queue: str = ""  # annotation queue that receives the escalations ("": none)

    def __post_init__(self):
        super().__post_init__()
        unknown = [s for s in self.strategies + [self.policy_strategy] if s not in ACQUISITIONS]
        if unknown or not self.strategies:
            raise ConfigError(
                f"unknown or missing strategies {unknown}; choose from {', '.join(ACQUISITIONS)}"
            )
        if [p for p in self.policies if p not in POLICIES]:
            raise ConfigError(f"policies {self.policies}: choose from {', '.join(POLICIES)}")
        if self.escalation_strategy and self.escalation_strategy not in self.strategies:
            raise ConfigError(
                f"escalation_strategy {self.escalation_strategy!r} is not one of strategies {self.strategies}"
            )
        if not 0 < self.target_accuracy < 1 or not 0 < self.alpha < 1 or not 0 < self.delta < 1:
            raise ConfigError("target_accuracy, alpha and delta must lie in (0, 1)")
        for key in (
            "epochs",
            "min_steps",
            "max_steps",
            "batch_size",
            "width",
            "finetune_steps",
            "stream_rounds",
            "ensemble_members",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        self.data_spec().check()

    def data_spec(self) -> ActiveDataSpec:
        return ActiveDataSpec(
            self.dataset,
            self.data_root,
            self.pool_limit,
            self.test_limit,
            self.calibration_size,
            tuple(self.ood_sets),
            self.ood_limit,
            self.seed,
        )

    def loop_spec(self) -> LoopSpec:
        return LoopSpec(
            self.initial,
            self.query,
            self.budget,
            self.pool_subset,
            self.mc_samples,
            self.ensemble_members,
            self.selection,
        )

    def train_spec(self, device: str = "cpu") -> TrainSpec:
        return TrainSpec(
            self.epochs,
            self.min_steps,
            self.max_steps,
            self.batch_size,
            self.lr,
            self.weight_decay,
            self.finetune_steps,
            self.replay,
            self.width,
            device,
        )

    def escalation_spec(self) -> EscalationSpec:
        return EscalationSpec(
            self.alpha,
            self.delta,
            self.annotator_budget,
            self.stream_rounds,
            self.knn_k,
            mc_samples=self.mc_samples,
            seed=self.seed,
        )


@dataclasses.dataclass
class ActiveResults:
    """What one run keeps in memory: the learning curves, the policy comparison and the escalation."""

    loops: dict[str, LoopHistory]  # strategy -> its learning curve (retrained from scratch)
    policies: dict[str, LoopHistory]  # retraining policy -> its curve on policy_strategy
    escalation: EscalationOutcome


def load(config: Config, device=None, progress: Progress = None) -> ActiveData:
    """The pool, test, calibration and stream splits; a budget the pool cannot meet fails here."""
    data = load_active_data(config.data_spec())
    config.loop_spec().check(len(data.pool), data.pool.num_classes)
    return data


def steps(run: Run[Config], data: ActiveData) -> Finished:
    """Learning curves, the policy comparison and the escalation report."""
    config, device, progress = run.config, str(run.device), run.progress
    loops = _learning_curves(config, data, device, progress)
    policies = _policy_comparison(config, data, device, loops, progress)
    chosen = loops[config.escalation_strategy or config.strategies[-1]]
    escalation = simulate(chosen.learner, data, config.escalation_spec())
    if config.queue:
        report.enqueue_escalations(
            config.queue, escalation, data, run.dir.path.name, str(runs_root_of(run.dir.path))
        )
    metrics = report.metrics(config, loops, policies, escalation)
    report.write_artifacts(run.dir, config, loops, policies, escalation, data)
    text = report.report_text(config, metrics.values, device, data)
    return Finished(metrics, text, ActiveResults(loops, policies, escalation))


def run(config: Config, progress: Progress = None, run_dir: RunDir | None = None) -> Result:
    """Learning curves, the policy comparison and the escalation report, written to a run folder."""
    return run_experiment(EXPERIMENT, config, load, steps, progress, run_dir)


def _learning_curves(config: Config, data, device: str, progress: Progress) -> dict:
    return {
        s: run_loop(
            data.pool,
            data.test,
            s,
            "scratch",
            config.loop_spec(),
            config.train_spec(device),
            config.seed,
            progress,
            stage=f"{s} (scratch)",
        )
        for s in config.strategies
    }


def _policy_comparison(config: Config, data, device: str, loops: dict, progress: Progress) -> dict:
    """The same strategy under each retraining policy (the scratch curve is reused when it ran)."""
    out = {}
    for policy in config.policies:
        if policy == "scratch" and config.policy_strategy in loops:
            out[policy] = loops[config.policy_strategy]
            continue
        out[policy] = run_loop(
            data.pool,
            data.test,
            config.policy_strategy,
            policy,
            config.loop_spec(),
            config.train_spec(device),
            config.seed,
            progress,
            stage=f"{config.policy_strategy} ({policy})",
        )
    return out


def aggregate_report(config: Config, metrics: Metrics, results) -> str:
    """The multi-seed report: mean ± std learning curves and labels-to-target on the mean curve."""
    return report.aggregate_text(config, metrics, results)
