"""The techniques, listed once: one descriptor each, and everything derived from it.

A technique's ``key`` is its one name. It is the package (``playground/<key>/``), the
experiment a recipe names (``experiment = "<key>"``), the recipe prefix (``recipes/<key>_*.toml``),
the page (``apps/views/<key>.py``) and the test folder (``tests/<key>/``). The experiment
registry, ``playground --help``, the app's navigation, the home cards and the README index are
all generated from :data:`TECHNIQUES`; ``tests/core/test_registry.py`` checks that the files exist.

Modules are imported only when asked, so ``playground --help`` answers at once. Each
experiment module defines ``Config`` (a :class:`~playground.core.config.RunConfig` subclass)
and ``run(config, progress=None, run_dir=None) -> Result``.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from playground.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class Technique:
    """One technique: its key (the one name), how people see it, and where its equations live."""

    key: str
    title: str
    summary: str  # one sentence for the home card, the README index and --help
    paper: str  # the paper(s) it reproduces, short
    equations: str  # the module whose docstrings hold the key equations
    icon: str  # a Streamlit material icon for the navigation
    section: str = "Techniques"
    old_names: tuple[str, ...] = ()  # experiment names used before, still read in old runs
    old_pages: tuple[str, ...] = ()  # page URL paths used before (``/cuboids``), still leading here
    headlines: tuple[str, ...] = ()  # its most telling metrics, first first ("*": one name between slashes)

    @property
    def module(self) -> str:
        return f"playground.{self.key}.experiment"

    @property
    def page(self) -> str:
        """The page file, relative to ``apps/``."""
        return f"views/{self.key}.py"

    @property
    def recipes(self) -> list[Path]:
        return sorted((REPO / "recipes").glob(f"{self.key}_*.toml"))


TECHNIQUES: tuple[Technique, ...] = (
    Technique(
        "classify",
        "Classifier baseline",
        "Train a small CNN (or a ResNet/RegNet) on Fashion-MNIST, digits, shapes or your own folder: "
        "accuracy per class, confusion matrix, training curves.",
        "the supervised baseline every other technique is measured against",
        "playground.classify.metrics",
        ":material/category:",
        old_pages=("classifier",),
        headlines=("test/accuracy", "test/loss"),
    ),
    Technique(
        "fct",
        "Forward compatible training (FCT)",
        "Upgrade an embedding model without re-embedding the gallery: side-information, a learned "
        "transformation and the BCT baseline, scored by retrieval.",
        "Ramanujan et al., Forward Compatible Training (CVPR 2022); Shen et al., BCT (CVPR 2020)",
        "playground.fct.transformation",
        ":material/upgrade:",
        headlines=(
            "fct/map_recovery",
            "retrieval/new-fct/mAP",
            "retrieval/old-old/mAP",
            "cost/backfill_speedup",
        ),
    ),
    Technique(
        "uncertainty",
        "Uncertainty & OOD",
        "Deep ensembles, MC dropout, temperature scaling and Bayesian layers (pyro): which model knows "
        "when it does not know, near and far OOD, calibration under corruption.",
        "Lakshminarayanan et al. 2017; Gal & Ghahramani 2016; Blundell et al. 2015; Liu et al. 2020",
        "playground.uncertainty.scores",
        ":material/help:",
        old_names=("ood",),
        headlines=("test/ensemble/accuracy", "ood/ensemble/near/auroc", "ood/ensemble/far/auroc"),
    ),
    Technique(
        "active",
        "Active learning",
        "Pick the images worth labelling next (entropy, margin, BALD) and escalate uncertain predictions "
        "to an annotator queue that never loses a decision.",
        "Gal, Islam & Ghahramani, Deep Bayesian Active Learning (ICML 2017); "
        "Angelopoulos et al., Learn-then-Test (2021)",
        "playground.active.acquisition",
        ":material/school:",
        headlines=("al/*/final_accuracy", "escalation/auto_label_error"),
    ),
    Technique(
        "label",
        "Labelling loop",
        "Label your own images with people in the loop: the model pre-labels what a calibrated threshold "
        "certifies, k annotators label the rest with consensus (Dawid-Skene), and it retrains from them.",
        "Dawid & Skene (1979); Sener & Savarese, Core-Set (ICLR 2018); Angelopoulos et al., "
        "Learn-then-Test (2021)",
        "playground.label.consensus",
        ":material/label:",
        headlines=(
            "crowd/spammer/dawid_skene/accuracy",
            "loop/uncertainty/labels_to_target",
            "loop/auto_label_error",
        ),
    ),
    Technique(
        "fusion",
        "Knowledge fusion",
        "Fuse image features with captions, a knowledge graph and retrieved neighbours; zero-shot classes "
        "from label embeddings.",
        "Bordes et al., TransE (2013); Perez et al., FiLM (2018); Frome et al., DeViSE (2013); "
        "Akata et al., ALE (2015)",
        "playground.fusion.heads",
        ":material/join_inner:",
        headlines=("fusion/*/full/accuracy", "zeroshot/heldout/accuracy"),
    ),
    Technique(
        "swav",
        "Self-supervised SwAV",
        "Learn features without labels (Sinkhorn-Knopp codes, prototypes, multi-crop) and see what they are "
        "worth with 1%, 10% and all labels.",
        "Caron et al., SwAV (NeurIPS 2020); Goyal et al., SEER (2021)",
        "playground.swav.swav",
        ":material/hub:",
        headlines=(
            "ssl/swav/linear_probe/accuracy",
            "ssl/supervised/linear_probe/accuracy",
            "ssl/*/linear_probe_1/accuracy",
        ),
    ),
    Technique(
        "design_space",
        "Design spaces (AnyNet, RegNet)",
        "Sample AnyNetX and RegNet models under a FLOP budget, train each briefly through the sweep runner "
        "and compare the spaces by their error EDFs.",
        "Radosavovic et al., Designing Network Design Spaces (CVPR 2020)",
        "playground.design_space.edf",
        ":material/grid_view:",
        headlines=("edf/*/error_median", "edf/*/error_p10"),
    ),
    Technique(
        "optimizers",
        "Optimizers",
        "GD, SGD, mini-batch SGD, Adagrad, RMSprop, Adam and AdaDelta written out: trajectories on 2-D test "
        "functions and training curves side by side.",
        "Duchi et al. 2011; Tieleman & Hinton 2012; Kingma & Ba 2015; Zeiler 2012",
        "playground.optimizers.optimizers",
        ":material/trending_down:",
        headlines=("optim/*/test/accuracy",),
    ),
    Technique(
        "latency",
        "Latency benchmark",
        "fp32, bf16, fp16 and int8 in PyTorch and ONNX Runtime, pruning and distillation: latency, accuracy "
        "and trust side by side.",
        "Jacob et al. 2018 (int8); Hinton et al. 2015 (KD); Fang et al., DepGraph (2023)",
        "playground.latency.variants",
        ":material/speed:",
        old_pages=("optimize",),
        headlines=("bench/torch_fp32/b1/p50_ms", "bench/*/b1/p50_ms", "bench/*/accuracy"),
    ),
    Technique(
        "pointcloud",
        "3D cuboid annotation",
        "Load point clouds, propose cuboids (RANSAC ground, DBSCAN, L-shape fit, or a learned pillar "
        "detector), edit them in four views, track them over frames and export KITTI, nuScenes or Datumaro.",
        "Fischler & Bolles, RANSAC (1981); Ester et al., DBSCAN (1996); Zhang et al., L-shape fitting "
        "(2017); Lang et al., PointPillars (2019); Yin et al., CenterPoint (2021)",
        "playground.pointcloud.proposals",
        ":material/view_in_ar:",
        section="Annotation",
        old_names=("cuboids",),
        old_pages=("cuboids",),
        headlines=(
            "proposals/recall_bev50",
            "proposals/precision_bev50",
            "detect/*/car/ap_bev50",
            "proposals/mean_bev_iou",
        ),
    ),
)

BY_KEY: dict[str, Technique] = {t.key: t for t in TECHNIQUES}
OLD_NAMES: dict[str, str] = {old: t.key for t in TECHNIQUES for old in t.old_names}
# recipe files renamed when each technique got one name; the old paths work for one release
OLD_RECIPES: dict[str, str] = {
    "baseline_fashion.toml": "classify_fashion.toml",
    "ood_fashion.toml": "uncertainty_fashion.toml",
    "cuboid_proposals.toml": "pointcloud_proposals.toml",
}
EXPERIMENTS: dict[str, str] = {t.key: t.module for t in TECHNIQUES}


def canonical_key(name: str) -> str:
    """The technique key for ``name``, which may be an experiment name an older run used."""
    return OLD_NAMES.get(name, name)


def headline_names(experiment: str, names) -> list[str]:
    """The metric names among ``names`` that ``experiment``'s :attr:`Technique.headlines` pick, in their
    order (several names a pattern matches: sorted)."""
    from fnmatch import fnmatchcase

    def matches(pattern: str, name: str) -> bool:
        parts, wanted = name.split("/"), pattern.split("/")
        return len(parts) == len(wanted) and all(fnmatchcase(p, w) for p, w in zip(parts, wanted))

    technique = next((t for t in TECHNIQUES if t.key == experiment), None)
    picked: list[str] = []
    for pattern in technique.headlines if technique else ():
        picked += sorted(n for n in names if matches(pattern, n) and n not in picked)
    return picked


def get_experiment(name: str, warn: bool = True) -> ModuleType:
    """The experiment module of technique ``name`` (an old experiment name works, with a notice)."""
    key = canonical_key(name)
    if key not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    if key != name and warn:
        print(
            f'note: experiment "{name}" is now called "{key}"; the old name goes in the next release',
            file=sys.stderr,
        )
    return importlib.import_module(EXPERIMENTS[key])


def readme_index() -> str:
    """The README's technique index (``scripts/readme_index.py`` writes it between markers)."""
    lines = ["| technique | key | recipes | page | paper |", "|---|---|---|---|---|"]
    for t in TECHNIQUES:
        recipes = ", ".join(f"[`{p.name}`](recipes/{p.name})" for p in t.recipes)
        lines.append(f"| **{t.title}**: {t.summary} | `{t.key}` | {recipes} | `apps/{t.page}` | {t.paper} |")
    return "\n".join(lines)
