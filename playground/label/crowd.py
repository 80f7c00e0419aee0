"""Simulated crowds: annotators with known confusion matrices, to measure consensus on real labels.

An annotator is a row-stochastic confusion matrix ``P[c, l] = P(says l | true class c)``:

- ``good``: ``accuracy`` on the diagonal (default 0.85, close to the 83.5% that crowd-sourced
  people without fashion expertise reach on Fashion-MNIST in Zalando's benchmark); 80% of the error
  mass goes to the class's confusable partners, the rest over the other classes, with
  annotator-specific Dirichlet(2) weights.
- ``poor``: the same with default accuracy 0.65 and errors split evenly between partners and the rest.
- ``spammer``: answers independent of the truth, uniformly at random.
- ``fixed_spammer``: answers independent of the truth, always one class (drawn per annotator).

Confusable partners come from a grouping such as :data:`FASHION_CONFUSABLE` (tops: T-shirt/top,
pullover, coat, shirt; footwear: sandal, sneaker, ankle boot); without one, each class gets two
random partners.

:func:`crowd_benchmark` measures the label accuracy of one random annotator per item, majority vote
and Dawid-Skene in two settings, with every item labelled by 3 distinct annotators:

- ``two_good_one_poor``: a crowd of three (good 0.85, good 0.85, poor 0.65), all on every item.
- ``spammer``: a crowd of six (three good 0.85, one poor 0.65, one uniform spammer, one fixed
  spammer), each item given to 3 of them at random. A third of the crowd spamming is within what
  studies of open crowds report (e.g. Vuurens et al., "How much spam can you take?", 2011).

Every method must name a label for every item: majority-vote ties are broken uniformly at random
among the tied labels, Dawid-Skene takes the arg-max posterior (no ``min_posterior``), so the
accuracies compare like with like.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from playground.errors import ConfigError, DataFormatError
from playground.label.consensus import Annotations, dawid_skene, majority_vote

FASHION_CONFUSABLE = ((0, 2, 4, 6), (5, 7, 9))
KINDS = ("good", "poor", "spammer", "fixed_spammer")
DEFAULT_ACCURACY = {"good": 0.85, "poor": 0.65}
CONFUSABLE_SHARE = {"good": 0.8, "poor": 0.5}
SETTINGS = {
    "two_good_one_poor": (("good", "good", "poor"), 3),
    "spammer": (("good", "good", "good", "poor", "spammer", "fixed_spammer"), 3),
}
METHODS = ("single", "majority", "dawid_skene")


def _rng(generator: np.random.Generator | int | None) -> np.random.Generator:
    return generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)


def confusable_partners(
    num_classes: int, confusable: Sequence[Sequence[int]] | None, generator: np.random.Generator
) -> list[list[int]]:
    """Each class's confusable partners: its group but itself, or two random classes without a grouping."""
    if confusable is None:
        return [
            sorted(
                generator.choice([k for k in range(num_classes) if k != c], min(2, num_classes - 1), False)
            )
            for c in range(num_classes)
        ]
    partners: list[list[int]] = [[] for _ in range(num_classes)]
    for group in confusable:
        for c in group:
            if not 0 <= c < num_classes:
                raise DataFormatError(f"confusable class {c} is not in 0..{num_classes - 1}")
            if partners[c]:
                raise DataFormatError(f"class {c} is in more than one confusable group")
            partners[c] = [k for k in group if k != c]
    return partners


def _error_row(
    c: int, partners: list[int], num_classes: int, error: float, share: float, generator
) -> np.ndarray:
    row = np.zeros(num_classes)
    others = [k for k in range(num_classes) if k != c and k not in partners]
    groups = (
        [(partners, share), (others, 1.0 - share)] if partners and others else [(partners or others, 1.0)]
    )
    for classes, mass in groups:
        if classes:
            row[classes] = error * mass * generator.dirichlet(np.full(len(classes), 2.0))
    return row


def confusion(
    kind: str,
    num_classes: int,
    accuracy: float | None = None,
    generator: np.random.Generator | int | None = None,
    confusable: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    """A (C, C) confusion matrix, rows the true class, for an annotator of ``kind`` (see the module).

    ``accuracy`` is the diagonal for ``good`` and ``poor`` (defaults 0.85 and 0.65); spammers ignore it.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown annotator kind {kind!r}; choose one of {', '.join(KINDS)}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
    generator = _rng(generator)
    if kind == "spammer":
        return np.full((num_classes, num_classes), 1.0 / num_classes)
    if kind == "fixed_spammer":
        matrix = np.zeros((num_classes, num_classes))
        matrix[:, generator.integers(num_classes)] = 1.0
        return matrix
    accuracy = DEFAULT_ACCURACY[kind] if accuracy is None else accuracy
    if not 0.0 <= accuracy <= 1.0:
        raise ConfigError(f"accuracy must lie in [0, 1], got {accuracy}")
    if num_classes == 1:
        return np.ones((1, 1))
    partners = confusable_partners(num_classes, confusable, generator)
    matrix = np.stack(
        [
            _error_row(c, partners[c], num_classes, 1.0 - accuracy, CONFUSABLE_SHARE[kind], generator)
            for c in range(num_classes)
        ]
    )
    matrix[np.arange(num_classes), np.arange(num_classes)] = accuracy
    return matrix


def _check_crowd(true_labels: np.ndarray, confusions: np.ndarray, per_item: int) -> None:
    if true_labels.ndim != 1:
        raise DataFormatError(f"true labels must be 1-D, got shape {true_labels.shape}")
    if confusions.ndim != 3 or confusions.shape[1] != confusions.shape[2]:
        raise DataFormatError(f"confusions must have shape (A, C, C), got {confusions.shape}")
    if not np.allclose(confusions.sum(axis=2), 1.0) or (confusions < 0).any():
        raise DataFormatError("every confusion row must be a probability distribution")
    num_classes = confusions.shape[1]
    if true_labels.size and (true_labels.min() < 0 or true_labels.max() >= num_classes):
        raise DataFormatError(f"true labels must lie in 0..{num_classes - 1}")
    if not 1 <= per_item <= confusions.shape[0]:
        raise ConfigError(f"per_item must be between 1 and the crowd's {confusions.shape[0]} annotators")


def simulate_crowd(
    true_labels: np.ndarray,
    confusions: np.ndarray,
    per_item: int = 3,
    generator: np.random.Generator | int | None = None,
    names: Sequence[str] | None = None,
) -> Annotations:
    """Each item labelled by ``per_item`` distinct annotators drawn uniformly from the crowd.

    Annotator ``a`` answers label ``l`` for an item of true class ``c`` with probability
    ``confusions[a, c, l]``. Annotations come grouped by item, ``per_item`` rows each.
    """
    true_labels = np.asarray(true_labels).astype(np.int64)
    confusions = np.asarray(confusions, dtype=np.float64)
    _check_crowd(true_labels, confusions, per_item)
    generator = _rng(generator)
    num_items, (num_annotators, num_classes, _) = true_labels.size, confusions.shape
    chosen = np.argsort(generator.random((num_items, num_annotators)), axis=1)[:, :per_item]
    items = np.repeat(np.arange(num_items), per_item)
    annotators = chosen.ravel()
    cumulative = np.cumsum(confusions[annotators, true_labels[items]], axis=1)
    draws = generator.random(items.size)[:, None] * cumulative[:, -1:]
    labels = np.minimum((draws >= cumulative).sum(axis=1), num_classes - 1)
    return Annotations(
        items,
        annotators,
        labels,
        num_items=num_items,
        num_annotators=num_annotators,
        num_classes=num_classes,
        annotator_names=list(names) if names else [],
    )


def argmax_random_ties(scores: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """Row-wise arg-max, ties broken uniformly at random."""
    top = scores == scores.max(axis=1, keepdims=True)
    return np.argmax(top * generator.random(scores.shape), axis=1)


def crowd_benchmark(
    true_labels: np.ndarray,
    num_classes: int,
    seed: int = 0,
    confusable: Sequence[Sequence[int]] | None = None,
) -> dict[str, float]:
    """Label accuracy of ``single``, ``majority`` and ``dawid_skene`` in each setting of :data:`SETTINGS`.

    Keys are ``crowd/<setting>/<method>/accuracy``; the crowd's confusions and who labels what are
    drawn from ``seed``. ``single`` is one of the item's annotators picked at random.
    """
    true_labels = np.asarray(true_labels).astype(np.int64)
    generator = np.random.default_rng(seed)
    metrics = {}
    for setting, (kinds, per_item) in SETTINGS.items():
        confusions = np.stack([confusion(k, num_classes, None, generator, confusable) for k in kinds])
        ann = simulate_crowd(true_labels, confusions, per_item, generator, names=list(kinds))
        single = ann.labels[
            np.arange(ann.num_items) * per_item + generator.integers(per_item, size=ann.num_items)
        ]
        predicted = {
            "single": single,
            "majority": argmax_random_ties(majority_vote(ann).posteriors, generator),
            "dawid_skene": dawid_skene(ann, min_posterior=0.0).labels,
        }
        for method in METHODS:
            metrics[f"crowd/{setting}/{method}/accuracy"] = float((predicted[method] == true_labels).mean())
    return metrics


def fashion_crowd_benchmark(seeds: Sequence[int] = (0, 1, 2), root: str | None = None) -> dict[str, float]:
    """:func:`crowd_benchmark` on Fashion-MNIST's 10,000 test labels, averaged over ``seeds``."""
    from playground.data.fashion import load_fashion_mnist

    labels = load_fashion_mnist("test", root).labels.numpy()
    runs = [crowd_benchmark(labels, 10, seed, FASHION_CONFUSABLE) for seed in seeds]
    return {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}
