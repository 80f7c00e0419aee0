"""Entity linking: find a knowledge graph's entities in free text.

Text and entity names are compared as sequences of lower-case words, so the entity
``ankle_boot`` matches "ankle boot", ``t-shirt/top`` matches "T-shirt/top", and
``warm_colour`` matches "warm colour". The longest entity starting at a word wins
("ankle boot" before "boot"); a word that names no entity is also tried without a
plural ending ("triangles" -> "triangle", "crosses" -> "cross").
"""

from __future__ import annotations

import re

import torch

from playground.errors import ConfigError
from playground.fusion.knowledge_graph import KnowledgeGraph

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str) -> tuple[str, ...]:
    """Lower-case words of ``text``; ``_ - /`` and punctuation separate words."""
    return tuple(_WORD.findall(text.lower()))


def _phrase_table(graph: KnowledgeGraph) -> dict[tuple[str, ...], str]:
    """Each entity's word sequence -> the entity (the first entity wins a tie)."""
    table: dict[tuple[str, ...], str] = {}
    for entity in graph.entities:
        key = words(entity)
        if key:
            table.setdefault(key, entity)
    return table


def _singulars(word: str) -> list[str]:
    """Plausible singular forms of ``word``: "triangles" -> triangle, "crosses" -> cross."""
    forms = []
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        forms.append(word[:-1])
    return forms


def _match_at(tokens: tuple[str, ...], start: int, table: dict, longest: int) -> tuple[str, int] | None:
    """``(entity, length)`` of the longest entity starting at ``tokens[start]``, if any."""
    for length in range(min(longest, len(tokens) - start), 0, -1):
        phrase = tokens[start : start + length]
        if phrase in table:
            return table[phrase], length
        for singular in _singulars(phrase[-1]):
            if phrase[:-1] + (singular,) in table:
                return table[phrase[:-1] + (singular,)], length
    return None


def extract_entities(text: str, graph: KnowledgeGraph) -> list[str]:
    """The graph entities mentioned in ``text``, in order of appearance, each once.

    >>> extract_entities("a small red triangle on a striped background", shapes_graph())
    ['small', 'red', 'triangle', 'striped']
    """
    table = _phrase_table(graph)
    longest = max((len(phrase) for phrase in table), default=0)
    tokens, found, start = words(text), {}, 0
    while start < len(tokens):
        match = _match_at(tokens, start, table, longest)
        if match is None:
            start += 1
            continue
        entity, length = match
        found.setdefault(entity, None)
        start += length
    return list(found)


def entity_tokens(
    entity_lists: list[list[str]], graph: KnowledgeGraph, max_entities: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad entity names to index tensors: ``(indices (N, max_entities) int64, mask bool)``.

    Row ``i`` holds the graph indices of ``entity_lists[i]`` (at most ``max_entities``,
    the rest dropped), padded with index 0 where ``mask`` is False.
    """
    if not isinstance(max_entities, int) or isinstance(max_entities, bool) or max_entities < 1:
        raise ConfigError(f"max_entities must be a positive integer, got {max_entities!r}")
    indices = torch.zeros(len(entity_lists), max_entities, dtype=torch.int64)
    mask = torch.zeros(len(entity_lists), max_entities, dtype=torch.bool)
    for row, names in enumerate(entity_lists):
        kept = [graph.index(name) for name in names[:max_entities]]
        indices[row, : len(kept)] = torch.tensor(kept, dtype=torch.int64)
        mask[row, : len(kept)] = True
    return indices, mask
