"""Zero-shot on Fashion-MNIST with real knowledge: WordNet descriptions and WordNet-graph embeddings.

Each class is described from WordNet 3.0 (Debian ``wordnet-base``): its hypernym chain and its
gloss, e.g. "a sneaker, a kind of shoe, footwear, covering: a canvas shoe with a pliable rubber
sole", embedded by the sentence encoder (``text``); and by the TransE embedding of its node in
the WordNet hypernym graph of the ten class names (``kg``), in the spirit of Wang et al., "Zero-shot
recognition via semantic embeddings and knowledge graphs" (2018); ``text+kg`` concatenates both
(each L2-normalised). Four classes are held out of training (:data:`HELDOUT`); chance among
them is 0.25.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from playground.core.progress import Progress, staged
from playground.data import load_dataset
from playground.data.splits import limit_per_split
from playground.fusion.knowledge_graph import class_entity, hypernym_chain, wordnet_gloss, wordnet_graph
from playground.fusion.transe import train_transe
from playground.fusion.zeroshot import scores, train_zero_shot, zero_shot_metrics

HELDOUT = ("Sneaker", "Shirt", "Dress", "Bag")
EMBEDDINGS = ("text", "kg", "text+kg")


def describe_from_wordnet(name: str) -> str:
    chain = ", ".join(word.replace("_", " ") for word in hypernym_chain(name)[:3])
    return f"a {name.lower()}, a kind of {chain}: {wordnet_gloss(name)}"


def class_embeddings(
    names: list[str], encode_text: Callable, transe_dim: int, transe_epochs: int, seed: int
) -> dict[str, torch.Tensor]:
    """``text``, ``kg`` and ``text+kg`` class embeddings, one row per class name."""
    text = encode_text([describe_from_wordnet(name) for name in names])
    graph = wordnet_graph(names)
    transe = train_transe(graph, dim=transe_dim, epochs=transe_epochs, seed=seed)
    kg = torch.stack([transe.entity_embeddings[graph.index(class_entity(name))] for name in names])
    return {
        "text": text,
        "kg": kg,
        "text+kg": torch.cat([F.normalize(text, dim=1), F.normalize(kg, dim=1)], 1),
    }


def run_fashion_zero_shot(
    config, encode_text: Callable, progress: Progress = None
) -> dict[str, dict[str, float]]:
    """Zero-shot metrics per class-embedding kind (``config``: fashion_zeroshot_train,
    zeroshot_epochs, ...).
    """
    train = limit_per_split(
        load_dataset("fashion_mnist", "train", seed=config.seed), config.fashion_zeroshot_train, config.seed
    )
    test = limit_per_split(
        load_dataset("fashion_mnist", "test", seed=config.seed), config.fashion_zeroshot_test, config.seed
    )
    unseen = [train.classes.index(name) for name in HELDOUT]
    embeddings = class_embeddings(
        train.classes, encode_text, config.transe_dim, config.transe_epochs, config.seed
    )
    results = {}
    for kind, classes in embeddings.items():
        model = train_zero_shot(
            train.images,
            train.labels,
            classes,
            unseen,
            width=config.width * 2,
            epochs=config.zeroshot_epochs,
            lr=config.lr,
            batch_size=config.batch_size,
            seed=config.seed,
            progress=staged(progress, f"Fashion-MNIST zero-shot ({kind})"),
        )
        results[kind] = zero_shot_metrics(scores(model, test.images, classes), test.labels, unseen)
    return results
