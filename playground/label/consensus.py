"""Consensus between annotators: majority vote, Dawid-Skene, and agreement.

When k people label the same item, their answers are combined into one label per item:

- **Majority vote**: the most frequent label and its vote share; a tie, or a share at or under one
  half (by default), is "no consensus" (label ``-1``) and the item goes to a reviewer.
- **Dawid-Skene** (A. P. Dawid and A. M. Skene, "Maximum likelihood estimation of observer
  error-rates using the EM algorithm", Applied Statistics 28(1), 1979): each annotator ``a`` has a
  confusion matrix ``θ^a[c, l] = P(a says l | true class c)`` and the classes a prior ``π``. EM
  alternates, starting from the majority-vote shares as posteriors ``T``:

  E-step  ``T_ic ∝ π_c · Π_{annotations (i, a, l)} θ^a[c, l]``

  M-step  ``π_c = mean_i T_ic``,  ``θ^a[c, l] ∝ smoothing + Σ_i T_ic · [a said l on item i]``

  so an annotator who is often right counts for more than a spammer, and one who systematically
  says "shirt" for "T-shirt" is corrected. The ``smoothing`` pseudo-count (a Dirichlet prior on each
  confusion row) keeps rows of rarely seen classes finite. Checked against ``crowdkit.aggregation``.
- **Agreement**: Krippendorff's alpha (nominal, from the ``krippendorff`` package) over the
  project and one-vs-rest per class, and the raw percent agreement of pairs of labels on an item.

Everything here is pure NumPy over a long table of annotations (:class:`Annotations`); the store
is read elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import krippendorff
import numpy as np

from playground.errors import ConfigError, DataFormatError

NO_CONSENSUS = -1
_EPS = 1e-10  # floor for probabilities before a log, as crowd-kit's


@dataclass(frozen=True)
class Annotations:
    """A long table of labels: annotation ``m`` says ``labels[m]`` for ``items[m]``, by ``annotators[m]``.

    Indices run over ``range(num_items)``, ``range(num_annotators)`` and ``range(num_classes)``; items
    nobody labelled and annotators who labelled nothing are allowed. ``item_keys``,
    ``annotator_names`` and ``class_names`` map indices back to the caller's keys when known.
    """

    items: np.ndarray
    annotators: np.ndarray
    labels: np.ndarray
    num_items: int
    num_annotators: int
    num_classes: int
    item_keys: list = field(default_factory=list)
    annotator_names: list = field(default_factory=list)
    class_names: list = field(default_factory=list)

    def __post_init__(self) -> None:
        columns = {}
        for name in ("items", "annotators", "labels"):
            columns[name] = _index_column(name, getattr(self, name))
            object.__setattr__(self, name, columns[name])
        lengths = {len(c) for c in columns.values()}
        if len(lengths) != 1:
            raise DataFormatError(
                "items, annotators and labels must have the same length, got "
                + ", ".join(f"{n}={len(c)}" for n, c in columns.items())
            )
        if self.num_classes < 1:
            raise DataFormatError(f"num_classes must be at least 1, got {self.num_classes}")
        for name, size in (("items", self.num_items), ("annotators", self.num_annotators)):
            if size < 0:
                raise DataFormatError(f"num_{name} must be non-negative, got {size}")
        for name, size in (
            ("items", self.num_items),
            ("annotators", self.num_annotators),
            ("labels", self.num_classes),
        ):
            column = columns[name]
            if column.size and (column.min() < 0 or column.max() >= size):
                raise DataFormatError(f"{name} must lie in [0, {size}), found {column.min()}..{column.max()}")
        self._check_names()
        self._check_duplicates()

    def _check_names(self) -> None:
        for name, size in (
            ("item_keys", self.num_items),
            ("annotator_names", self.num_annotators),
            ("class_names", self.num_classes),
        ):
            names = getattr(self, name)
            if names and len(names) != size:
                raise DataFormatError(f"{name} has {len(names)} entries for {size} indices")

    def _check_duplicates(self) -> None:
        pairs = self.items * max(self.num_annotators, 1) + self.annotators
        unique, counts = np.unique(pairs, return_counts=True)
        if np.any(counts > 1):
            first = unique[counts > 1][0]
            item, annotator = divmod(int(first), max(self.num_annotators, 1))
            raise DataFormatError(
                f"annotator {self.annotator_name(annotator)!r} labelled item {self.item_key(item)!r} "
                "more than once; keep one decision per annotator and item"
            )

    @property
    def size(self) -> int:
        return int(self.items.size)

    def item_key(self, index: int) -> Any:
        return self.item_keys[index] if self.item_keys else index

    def annotator_name(self, index: int) -> Any:
        return self.annotator_names[index] if self.annotator_names else index

    def class_name(self, index: int) -> Any:
        return self.class_names[index] if self.class_names else index

    def counts(self) -> np.ndarray:
        """Votes per item and class, shape (num_items, num_classes)."""
        flat = np.bincount(
            self.items * self.num_classes + self.labels, minlength=self.num_items * self.num_classes
        )
        return flat.reshape(self.num_items, self.num_classes).astype(np.float64)

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[tuple[Any, Any, Any]],
        classes: int | Sequence[str],
        item_keys: Sequence[Any] | None = None,
        annotator_names: Sequence[Any] | None = None,
    ) -> Annotations:
        """Build from ``(item_key, annotator_name, label)`` rows.

        ``classes`` is the number of classes or their names; a label is a class index or, when names
        are given, a class name. ``item_keys`` and ``annotator_names`` declare items and annotators
        up front (e.g. the whole pool and every member, including those without labels); otherwise
        they are taken in order of first appearance.
        """
        class_names = [] if isinstance(classes, int) else list(classes)
        num_classes = classes if isinstance(classes, int) else len(class_names)
        keys = _Indexer(item_keys, "item")
        names = _Indexer(annotator_names, "annotator")
        by_name = {name: index for index, name in enumerate(class_names)}
        items, annotators, labels = [], [], []
        for row in rows:
            if len(row) != 3:
                raise DataFormatError(f"each row must be (item, annotator, label), got {row!r}")
            key, name, label = row
            items.append(keys.index(key))
            annotators.append(names.index(name))
            labels.append(_class_index(label, num_classes, by_name, key))
        return cls(
            np.asarray(items, dtype=np.int64),
            np.asarray(annotators, dtype=np.int64),
            np.asarray(labels, dtype=np.int64),
            num_items=len(keys.keys),
            num_annotators=len(names.keys),
            num_classes=num_classes,
            item_keys=keys.keys,
            annotator_names=names.keys,
            class_names=class_names,
        )


class _Indexer:
    """Maps keys to indices, either from a declared list (unknown keys are an error) or as they come."""

    def __init__(self, declared: Sequence[Any] | None, what: str) -> None:
        self.fixed = declared is not None
        self.keys = list(declared) if declared is not None else []
        self.what = what
        self.lookup = {key: index for index, key in enumerate(self.keys)}
        if len(self.lookup) != len(self.keys):
            raise DataFormatError(f"the declared {what}s contain duplicates")

    def index(self, key: Any) -> int:
        if key not in self.lookup:
            if self.fixed:
                raise DataFormatError(f"{self.what} {key!r} is not among the declared {self.what}s")
            self.lookup[key] = len(self.keys)
            self.keys.append(key)
        return self.lookup[key]


def _class_index(label: Any, num_classes: int, by_name: dict[str, int], key: Any) -> int:
    if isinstance(label, str) and label in by_name:
        return by_name[label]
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= label < num_classes:
        return int(label)
    known = ", ".join(by_name) if by_name else f"0..{num_classes - 1}"
    raise DataFormatError(f"label {label!r} of item {key!r} is not one of the classes ({known})")


def _index_column(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataFormatError(f"{name} must be a 1-D array, got shape {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise DataFormatError(f"{name} must hold integer indices, got dtype {array.dtype}")
    as_int = array.astype(np.int64)
    if not np.array_equal(as_int, array):
        raise DataFormatError(f"{name} must hold integer indices, found non-integer values")
    return as_int


@dataclass(frozen=True)
class Consensus:
    """One label per item (``-1``: no consensus, e.g. a tie or no labels) and what it rests on.

    ``confidence`` is the vote share (majority vote) or the posterior of the label (Dawid-Skene),
    NaN for items nobody labelled. ``posteriors`` rows are vote shares or ``T_i``.
    ``annotator_accuracy`` is the expected fraction of each annotator's answers that are right
    under ``posteriors`` (NaN for an annotator without labels); ``confusions`` (A, C, C), rows the
    true class and columns the label given, and ``prior`` only come from Dawid-Skene.
    """

    method: str
    labels: np.ndarray
    confidence: np.ndarray
    posteriors: np.ndarray
    num_votes: np.ndarray
    annotator_accuracy: np.ndarray
    confusions: np.ndarray | None = None
    prior: np.ndarray | None = None
    iterations: int = 0

    @property
    def no_consensus(self) -> np.ndarray:
        """Indices of the items that go to a reviewer."""
        return np.flatnonzero(self.labels == NO_CONSENSUS)


def _expected_accuracy(ann: Annotations, posteriors: np.ndarray) -> np.ndarray:
    """(1/n_a) Σ_{(i, a, l)} T_il: the chance each answer is right, averaged over the annotator's answers."""
    right = posteriors[ann.items, ann.labels]
    total = np.bincount(ann.annotators, weights=right, minlength=ann.num_annotators)
    count = np.bincount(ann.annotators, minlength=ann.num_annotators)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _accuracy_against(ann: Annotations, labels: np.ndarray) -> np.ndarray:
    """Fraction of each annotator's answers equal to ``labels`` on items with a consensus."""
    decided = labels[ann.items] != NO_CONSENSUS
    right = (labels[ann.items] == ann.labels) & decided
    hits = np.bincount(ann.annotators, weights=right.astype(float), minlength=ann.num_annotators)
    count = np.bincount(ann.annotators, weights=decided.astype(float), minlength=ann.num_annotators)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, hits / np.maximum(count, 1), np.nan)


def majority_vote(ann: Annotations, min_share: float | None = None) -> Consensus:
    """Per item the most frequent label and its vote share.

    No consensus (``-1``) on a tie for the top, for an item without labels, and when the share is
    not above one half (default) or below ``min_share`` when given (``share >= min_share``).
    ``annotator_accuracy`` is each annotator's agreement with the consensus labels, over the items
    that have one (crowd-kit's ``MajorityVote.skills_``).
    """
    counts = ann.counts()
    votes = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(votes[:, None] > 0, counts / np.maximum(votes, 1)[:, None], 0.0)
    top = shares.max(axis=1)
    tie = (shares == top[:, None]).sum(axis=1) > 1
    enough = top > 0.5 if min_share is None else top >= min_share
    labels = np.where((votes > 0) & ~tie & enough, shares.argmax(axis=1), NO_CONSENSUS)
    return Consensus(
        method="majority",
        labels=labels.astype(np.int64),
        confidence=np.where(votes > 0, top, np.nan),
        posteriors=shares,
        num_votes=votes.astype(np.int64),
        annotator_accuracy=_accuracy_against(ann, labels),
    )


def _sum_rows(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """``out[j] = Σ_{m: index[m] = j} values[m]`` for values of shape (M, C)."""
    out = np.empty((size, values.shape[1]))
    for column in range(values.shape[1]):
        out[:, column] = np.bincount(index, weights=values[:, column], minlength=size)
    return out


def _m_step(ann: Annotations, posteriors: np.ndarray, smoothing: float) -> np.ndarray:
    """θ^a[c, l] ∝ smoothing + Σ_i T_ic [a said l on item i]; a row without any mass is uniform."""
    a, c = ann.num_annotators, ann.num_classes
    counts = _sum_rows(ann.annotators * c + ann.labels, posteriors[ann.items], a * c)
    counts = counts.reshape(a, c, c).transpose(0, 2, 1) + smoothing  # [annotator, true class, label]
    totals = counts.sum(axis=2, keepdims=True)
    return np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), 1.0 / c)


def _e_step(ann: Annotations, prior: np.ndarray, confusions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """T_ic ∝ π_c Π θ^a[c, l] in log space; returns T and log Σ_c π_c Π θ^a[c, l] per item."""
    log_theta = np.log(np.maximum(confusions, _EPS))
    per_annotation = log_theta[ann.annotators, :, ann.labels]  # (M, C)
    log_joint = np.log(np.maximum(prior, _EPS))[None, :] + _sum_rows(ann.items, per_annotation, ann.num_items)
    top = log_joint.max(axis=1, keepdims=True)
    log_norm = top + np.log(np.exp(log_joint - top).sum(axis=1, keepdims=True))
    return np.exp(log_joint - log_norm), log_norm[:, 0]


def _check_range(name: str, value: float, low: float, high: float = np.inf) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name} must lie in [{low}, {high}], got {value}")


def dawid_skene(
    ann: Annotations,
    iterations: int = 100,
    tolerance: float = 1e-6,
    smoothing: float = 0.01,
    min_posterior: float = 0.5,
) -> Consensus:
    """Dawid-Skene (1979) consensus by EM, initialised from the majority-vote shares.

    E-step ``T_ic ∝ π_c Π_{(i, a, l)} θ^a[c, l]``; M-step ``π_c = mean_i T_ic`` over labelled items and
    ``θ^a[c, l] ∝ smoothing + Σ_i T_ic [a said l on item i]``. Stops after ``iterations`` rounds or
    when the mean log-likelihood per annotation, ``(1/M) Σ_i log Σ_c π_c Π θ^a[c, l]``, moves by less
    than ``tolerance``. The label is ``argmax_c T_ic``; no consensus (``-1``) when that posterior is
    below ``min_posterior`` or the item has no labels (its posterior is then the prior).

    ``annotator_accuracy`` is the expected fraction of the annotator's answers that are right under
    the posteriors, ``(1/n_a) Σ_{(i, a, l)} T_il`` (the soft accuracy against the consensus, over the
    items the annotator actually saw), rather than ``Σ_c π_c θ^a[c, c]``, which assumes the
    project's class mix.
    """
    _check_range("iterations", iterations, 0)
    _check_range("tolerance", tolerance, 0.0)
    _check_range("smoothing", smoothing, 0.0)
    _check_range("min_posterior", min_posterior, 0.0, 1.0)
    votes = ann.counts().sum(axis=1)
    labelled = votes > 0
    if not labelled.any():
        return _empty_consensus(ann, votes)
    posteriors = majority_vote(ann).posteriors
    prior = posteriors[labelled].mean(axis=0)
    confusions = _m_step(ann, posteriors, smoothing)
    previous, done = -np.inf, 0
    while done < iterations:
        done += 1
        posteriors, log_norm = _e_step(ann, prior, confusions)
        prior = posteriors[labelled].mean(axis=0)
        confusions = _m_step(ann, posteriors, smoothing)
        log_likelihood = log_norm[labelled].sum() / ann.size
        if abs(log_likelihood - previous) < tolerance:
            break
        previous = log_likelihood
    posteriors[~labelled] = prior
    best = posteriors.max(axis=1)
    keep = labelled & (best >= min_posterior)
    return Consensus(
        method="dawid_skene",
        labels=np.where(keep, posteriors.argmax(axis=1), NO_CONSENSUS).astype(np.int64),
        confidence=np.where(labelled, best, np.nan),
        posteriors=posteriors,
        num_votes=votes.astype(np.int64),
        annotator_accuracy=_expected_accuracy(ann, posteriors),
        confusions=confusions,
        prior=prior,
        iterations=done,
    )


def _empty_consensus(ann: Annotations, votes: np.ndarray) -> Consensus:
    c = ann.num_classes
    return Consensus(
        method="dawid_skene",
        labels=np.full(ann.num_items, NO_CONSENSUS, dtype=np.int64),
        confidence=np.full(ann.num_items, np.nan),
        posteriors=np.full((ann.num_items, c), 1.0 / c),
        num_votes=votes.astype(np.int64),
        annotator_accuracy=np.full(ann.num_annotators, np.nan),
        confusions=np.full((ann.num_annotators, c, c), 1.0 / c),
        prior=np.full(c, 1.0 / c),
    )


def _alpha_of(counts: np.ndarray, names: Sequence[Any]) -> dict[str, Any]:
    """Nominal alpha and pairwise percent agreement from per-item value counts (items with ≥ 2 labels)."""
    result: dict[str, Any] = {"alpha": float("nan"), "percent_agreement": float("nan"), "reason": None}
    if counts.shape[0] == 0:
        result["reason"] = "no item has labels from two or more annotators"
        return result
    totals = counts.sum(axis=1)
    pairs = (totals * (totals - 1)).sum()
    result["percent_agreement"] = float((counts * (counts - 1)).sum() / pairs)
    used = np.flatnonzero(counts.sum(axis=0) > 0)
    if used.size < 2:
        result["reason"] = f"every label is {names[used[0]]!r}, so there is no variation to agree on"
        return result
    result["alpha"] = float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))
    return result


def agreement(ann: Annotations) -> dict[str, Any]:
    """Agreement between annotators over the project and per class.

    Returns ``alpha`` (Krippendorff's nominal alpha, 1 perfect, 0 chance level), ``percent_agreement``
    (the share of pairs of labels on the same item that agree), ``pairable_items`` (items with two
    or more labels, the only ones that count) and ``reason`` (why alpha is NaN, else ``None``);
    ``per_class`` maps each class index to the same figures for "this class or not" plus its
    ``class`` name. Degenerate input (one label per item, a single class) gives NaN and a reason.
    """
    counts = ann.counts()
    pairable = counts.sum(axis=1) >= 2
    counts = counts[pairable]
    names = [ann.class_name(index) for index in range(ann.num_classes)]
    result = _alpha_of(counts, names)
    result["pairable_items"] = int(pairable.sum())
    per_class = {}
    totals = counts.sum(axis=1)
    for index, name in enumerate(names):
        binary = np.stack([totals - counts[:, index], counts[:, index]], axis=1)
        figures = _alpha_of(binary, [f"not {name}", name])
        if counts.shape[0] and not counts[:, index].any():
            figures["reason"] = f"nobody used class {name!r} on an item with two or more labels"
        per_class[index] = {"class": name, **figures}
    result["per_class"] = per_class
    return result
