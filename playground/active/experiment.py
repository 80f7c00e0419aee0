"""Active learning that escalates uncertain samples to annotators (experiment ``active``).

One run draws a learning curve per acquisition strategy in ``methods`` (retraining from scratch each
round),
compares the two retraining policies on one strategy (``scratch`` against
``finetune_replay``), then routes a stream of new data through the escalation policy
calibrated to auto-label error ``≤ alpha``, and may send what it escalates to an annotation
queue in the project's database. See :mod:`~playground.active.acquisition`,
:mod:`~playground.active.loop`, :mod:`~playground.active.learner` and
:mod:`~playground.active.escalation`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from playground.active import report
from playground.active.acquisition import ACQUISITIONS
from playground.active.data import ActiveData, ActiveDataSpec, load_active_data
from playground.active.learner import POLICIES, TrainSpec
from playground.active.loop import LoopHistory, LoopSpec, run_loop
from playground.active.simulate import EscalationOutcome, EscalationSpec, simulate
from playground.core.config import RunConfig, chosen_methods
from playground.core.experiment import Finished, Run, run_experiment
from playground.core.progress import Progress
from playground.core.runs import Metrics, Result, RunDir
from playground.errors import ConfigError

EXPERIMENT = "active"


def _moved_into(section: str, keys: str) -> dict[str, str]:
    """Each of the space-separated old flat ``keys`` -> the same key in ``section``."""
    return {key: f"{section}.{key}" for key in keys.split()}


@dataclasses.dataclass
class Config(RunConfig):
    """The run: the dataset, the strategies (``methods``) and policies compared, the target accuracy and
    the queue at the top; the ``[data]``, ``[loop]``, ``[train]`` and ``[escalation]`` sections are the
    specs the code receives (``--set loop.budget=200``)."""

    # the flat keys of runs and recipes made before the sections, and ``strategies`` before it was
    # ``methods`` (read with a notice)
    RENAMED_KEYS: ClassVar[dict[str, str]] = {
        "strategies": "methods",
        **_moved_into("data", "pool_limit test_limit calibration_size ood_sets ood_limit"),
        **_moved_into("loop", "initial query budget pool_subset mc_samples selection"),
        "ensemble_members": "loop.members",
        **_moved_into(
            "train", "epochs min_steps max_steps batch_size lr weight_decay finetune_steps replay width"
        ),
        **_moved_into("escalation", "alpha delta annotator_budget stream_rounds knn_k"),
    }
    name: str = "active"
    dataset: Literal["fashion_mnist", "digits", "shapes", "folder"] = "fashion_mnist"
    data_root: str = ""
    # the acquisition strategies, each drawing a learning curve (retrained from scratch); empty: all of
    # them; run in ACQUISITIONS order
    methods: list[str] = dataclasses.field(default_factory=lambda: ["random", "margin", "entropy", "bald"])
    target_accuracy: float = 0.80
    # retraining policies, compared on one strategy
    policies: list[str] = dataclasses.field(default_factory=lambda: ["scratch", "finetune_replay"])
    policy_strategy: str = "entropy"
    escalation_strategy: str = ""  # whose final model routes the stream ("": the last of methods)
    queue: str = ""  # annotation queue that receives the escalations ("": none)
    data: ActiveDataSpec = dataclasses.field(default_factory=ActiveDataSpec)
    loop: LoopSpec = dataclasses.field(default_factory=LoopSpec)
    train: TrainSpec = dataclasses.field(default_factory=TrainSpec)
    escalation: EscalationSpec = dataclasses.field(default_factory=EscalationSpec)

    def __post_init__(self):
        super().__post_init__()
        self.methods = list(chosen_methods(self.methods, list(ACQUISITIONS)))
        if self.policy_strategy not in ACQUISITIONS:
            raise ConfigError(
                f"policy_strategy {self.policy_strategy!r} is unknown; choose from {', '.join(ACQUISITIONS)}"
            )
        if [p for p in self.policies if p not in POLICIES]:
            raise ConfigError(f"policies {self.policies}: choose from {', '.join(POLICIES)}")
        if self.escalation_strategy and self.escalation_strategy not in self.methods:
            raise ConfigError(
                f"escalation_strategy {self.escalation_strategy!r} is not one of methods {self.methods}"
            )
        if not 0 < self.target_accuracy < 1:
            raise ConfigError(f"target_accuracy must lie in (0, 1), got {self.target_accuracy}")
        self.data.check(self.dataset)


@dataclasses.dataclass
class ActiveResults:
    """What one run keeps in memory: the learning curves, the policy comparison and the escalation."""

    loops: dict[str, LoopHistory]  # strategy -> its learning curve (retrained from scratch)
    policies: dict[str, LoopHistory]  # retraining policy -> its curve on policy_strategy
    escalation: EscalationOutcome


def load(config: Config, device=None, progress: Progress = None) -> ActiveData:
    """The pool, test, calibration and stream splits; a budget the pool cannot meet fails here."""
    data = load_active_data(config.data, config.dataset, config.data_root, config.seed)
    config.loop.check(len(data.pool), data.pool.num_classes)
    return data


def steps(run: Run[Config], data: ActiveData) -> Finished:
    """Learning curves, the policy comparison and the escalation report."""
    config, device, progress = run.config, str(run.device), run.progress
    loops = _learning_curves(config, data, device, progress)
    policies = _policy_comparison(config, data, device, loops, progress)
    chosen = loops[config.escalation_strategy or config.methods[-1]]
    escalation = simulate(chosen.learner, data, config.escalation, config.loop.mc_samples, config.seed)
    fill = report.hand_off(config, escalation, data, run.dir)  # to config.queue, recorded in the run
    metrics = report.metrics(config, loops, policies, escalation)
    report.write_artifacts(run.dir, config, loops, policies, escalation, data)
    text = report.report_text(config, metrics.values, device, data, fill)
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
            config.loop,
            config.train,
            config.seed,
            progress,
            stage=f"{s} (scratch)",
            device=device,
        )
        for s in config.methods
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
            config.loop,
            config.train,
            config.seed,
            progress,
            stage=f"{config.policy_strategy} ({policy})",
            device=device,
        )
    return out


def aggregate_report(config: Config, metrics: Metrics, results) -> str:
    """The multi-seed report: mean ± std learning curves and labels-to-target on the mean curve."""
    return report.aggregate_text(config, metrics, results)
