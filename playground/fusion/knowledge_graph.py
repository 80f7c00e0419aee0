"""Knowledge graphs for knowledge fusion: the shapes vocabulary and WordNet hypernyms.

A :class:`KnowledgeGraph` is a list of entity names, a list of relation names and an
int64 ``(T, 3)`` tensor of ``(head, relation, tail)`` indices, so that embeddings such
as TransE (:mod:`playground.fusion.transe`) can be trained on it directly.

Two graphs come ready-made:

- :func:`shapes_graph`: the synthetic shapes' general knowledge
  (:func:`playground.data.shapes.knowledge_facts`) plus sizes and textures, so every word
  of a shapes caption names an entity;
- :func:`wordnet_graph`: the WordNet 3.0 noun hypernym chains of a list of class names
  (e.g. Fashion-MNIST's), read straight from the Debian package ``wordnet-base``
  (``/usr/share/wordnet``, format in ``man 5 wndb``) without any NLP library.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from playground.data.shapes import SIZES, TEXTURES, knowledge_facts
from playground.errors import ConfigError, DataFormatError, DataNotFoundError

WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_MAX_DEPTH = 4  # hypernyms kept per class in wordnet_graph: small graph, shared ancestors
_HYPERNYM_POINTERS = ("@", "@i")  # hypernym and instance hypernym
_FULL_CHAIN = 64  # deeper than any WordNet 3.0 noun hierarchy (the deepest is under 20)

Triple = tuple[str, str, str]


@dataclass(eq=False)
class KnowledgeGraph:
    """Entities, relations and ``(head, relation, tail)`` index triples (int64, ``(T, 3)``)."""

    entities: list[str]
    relations: list[str]
    triples: torch.Tensor
    _entity_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.triples = torch.as_tensor(self.triples, dtype=torch.int64).reshape(-1, 3)
        self._entity_index = {name: i for i, name in enumerate(self.entities)}

    @classmethod
    def from_triples(cls, triples: Iterable[Triple]) -> KnowledgeGraph:
        """Graph of the distinct ``(head, relation, tail)`` string triples, in first-seen order."""
        unique = list(dict.fromkeys(tuple(str(part) for part in triple) for triple in triples))
        if any(len(triple) != 3 for triple in unique):
            raise ConfigError("every triple must be (head, relation, tail); got one of another length")
        entities = list(dict.fromkeys(name for h, _, t in unique for name in (h, t)))
        relations = list(dict.fromkeys(r for _, r, _ in unique))
        entity_ids = {name: i for i, name in enumerate(entities)}
        relation_ids = {name: i for i, name in enumerate(relations)}
        rows = [(entity_ids[h], relation_ids[r], entity_ids[t]) for h, r, t in unique]
        return cls(entities, relations, torch.tensor(rows, dtype=torch.int64).reshape(-1, 3))

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def __len__(self) -> int:
        """The number of triples."""
        return int(self.triples.shape[0])

    def __contains__(self, entity: object) -> bool:
        return entity in self._entity_index

    def index(self, entity: str) -> int:
        """The index of ``entity``; ConfigError naming a few known entities when unknown."""
        try:
            return self._entity_index[entity]
        except KeyError:
            known = ", ".join(self.entities[:8]) + (", ..." if self.num_entities > 8 else "")
            raise ConfigError(
                f"unknown entity {entity!r} in the knowledge graph; known entities: {known}"
            ) from None

    def as_tuples(self, rows: torch.Tensor | None = None) -> list[Triple]:
        """The triples (all, or the given ``(k, 3)`` index rows) as name tuples."""
        rows = self.triples if rows is None else rows
        return [(self.entities[h], self.relations[r], self.entities[t]) for h, r, t in rows.tolist()]

    def neighbourhood(self, entities: list[str], hops: int = 1) -> list[Triple]:
        """The triples within ``hops`` steps of ``entities``, either direction, in graph order.

        One hop gives the triples whose head or tail is one of ``entities``; each further
        hop adds the triples touching any entity reached so far. Unknown names are ignored.
        """
        if not isinstance(hops, int) or hops < 0:
            raise ConfigError(f"hops must be a non-negative integer, got {hops!r}")
        known = [self._entity_index[name] for name in entities if name in self._entity_index]
        reached = torch.zeros(self.num_entities, dtype=torch.bool)
        reached[known] = True
        selected = torch.zeros(len(self), dtype=torch.bool)
        heads, tails = self.triples[:, 0], self.triples[:, 2]
        for _ in range(hops):
            selected |= reached[heads] | reached[tails]
            reached[heads[selected]] = True
            reached[tails[selected]] = True
        return self.as_tuples(self.triples[selected])


def shapes_graph() -> KnowledgeGraph:
    """The shapes vocabulary as a graph: every shape, colour (OOD too), size and texture.

    :func:`~playground.data.shapes.knowledge_facts` already relates shapes, colours, the
    order of sizes and the textures' patterns; sizes and textures are also tied to their
    kind (``("small", "is_a", "size")``) so the graph has one connected vocabulary.
    """
    kinds = [(size, "is_a", "size") for size in SIZES]
    kinds += [(texture, "is_a", "texture") for texture in TEXTURES]
    return KnowledgeGraph.from_triples(knowledge_facts() + kinds)


# --------------------------------------------------------------------- WordNet


def _wordnet_file(root: Path | str, name: str) -> Path:
    """``root/name``; DataNotFoundError telling how to install WordNet when absent."""
    root = Path(root)
    path = root / name
    if not path.is_file():
        raise DataNotFoundError(
            f"WordNet not found at {root}: install the Debian package wordnet-base "
            "(sudo apt-get install wordnet-base)"
        )
    return path


@functools.lru_cache(maxsize=4)
def _noun_index(root: str) -> dict[str, tuple[int, ...]]:
    """``index.noun`` as ``lemma -> data.noun byte offsets``, most frequent sense first."""
    index: dict[str, tuple[int, ...]] = {}
    with _wordnet_file(root, "index.noun").open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(" "):  # the licence header
                continue
            fields = line.split()
            try:
                senses = int(fields[2])
                index[fields[0]] = tuple(int(offset) for offset in fields[-senses:])
            except (IndexError, ValueError):
                raise DataFormatError(f"{root}/index.noun has a malformed line: {line[:60]!r}") from None
    return index


@dataclass(frozen=True)
class _Synset:
    """One ``data.noun`` line: its lemmas, hypernym offsets and gloss."""

    lemmas: tuple[str, ...]
    hypernyms: tuple[int, ...]
    gloss: str


@functools.lru_cache(maxsize=4096)
def _synset(root: str, offset: int) -> _Synset:
    """Parse the ``data.noun`` line at byte ``offset`` (``man 5 wndb``)."""
    with _wordnet_file(root, "data.noun").open("rb") as data:
        data.seek(offset)
        line = data.readline().decode("utf-8")
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    if not fields or fields[0] != f"{offset:08d}":
        raise DataFormatError(
            f"{root}/data.noun has no synset at byte {offset}; is index.noun from the same release?"
        )
    word_count = int(fields[3], 16)
    lemmas = tuple(fields[4 + 2 * i].lower() for i in range(word_count))
    pointers_at = 4 + 2 * word_count
    pointer_fields = fields[pointers_at + 1 : pointers_at + 1 + 4 * int(fields[pointers_at])]
    hypernyms = tuple(
        int(pointer_fields[i + 1])
        for i in range(0, len(pointer_fields), 4)
        if pointer_fields[i] in _HYPERNYM_POINTERS and pointer_fields[i + 2] == "n"
    )
    return _Synset(lemmas, hypernyms, gloss.strip())


def _singular_variants(keys: list[str]) -> list[str]:
    """Each key followed by its singular (a trailing "s" stripped), duplicates dropped."""
    variants = [variant for key in keys for variant in (key, key.removesuffix("s"))]
    return list(dict.fromkeys(key for key in variants if key))


def _candidate_lemmas(word: str) -> tuple[list[str], list[str]]:
    """Index keys to try for a class name, best first: ``(names, head_nouns)``.

    ``names``: the whole name (spaces as underscores) and each ``/`` alternative;
    ``head_nouns``: the last word of each. Every key is followed by its singular.
    """
    name = " ".join(word.lower().split())
    phrases = [name, *(part.strip() for part in name.split("/") if part.strip())]
    names = _singular_variants([phrase.replace(" ", "_") for phrase in phrases if phrase])
    heads = _singular_variants([phrase.split()[-1] for phrase in phrases if " " in phrase])
    return names, [head for head in heads if head not in names]


def _first_sense(word: str, root: Path | str) -> tuple[_Synset, str | None]:
    """The most frequent noun sense of ``word`` and, when only its head noun is in
    WordNet ("Ankle boot" -> "boot"), that head noun (else ``None``)."""
    index = _noun_index(str(root))
    names, head_nouns = _candidate_lemmas(word)
    for key in names + head_nouns:
        if key in index:
            return _synset(str(root), index[key][0]), (key if key in head_nouns else None)
    raise ConfigError(
        f"{word!r} is not a noun in WordNet (tried: {', '.join(names + head_nouns)}); "
        "rename the class to a common English noun"
    )


def hypernym_chain(word: str, root: Path | str = WORDNET_DIR, max_depth: int = _FULL_CHAIN) -> list[str]:
    """The hypernyms of ``word``'s first noun sense, nearest first, up to ``entity``.

    Each synset is named by its first lemma, lower-case with underscores kept, e.g.
    ``hypernym_chain("sneaker")`` starts ``["shoe", "footwear", "covering", ...]``.
    A compound found only by its head noun starts with that noun ("Ankle boot" ->
    ``["boot", "footwear", ...]``). Where a synset has several hypernyms the first
    listed is followed. At most ``max_depth`` names are returned.
    """
    if not isinstance(max_depth, int) or max_depth < 0:
        raise ConfigError(f"max_depth must be a non-negative integer, got {max_depth!r}")
    synset, head_noun = _first_sense(word, root)
    chain, visited = ([head_noun] if head_noun else []), set()
    while synset.hypernyms and len(chain) < max_depth and synset.hypernyms[0] not in visited:
        visited.add(synset.hypernyms[0])
        synset = _synset(str(root), synset.hypernyms[0])
        chain.append(synset.lemmas[0])
    return chain[:max_depth]


def wordnet_gloss(word: str, root: Path | str = WORDNET_DIR) -> str:
    """The definition of ``word``'s first noun sense, e.g. a class description for zero-shot."""
    gloss = _first_sense(word, root)[0].gloss
    return gloss.split('; "')[0].strip() if gloss else gloss


def class_entity(class_name: str) -> str:
    """The entity name of a class: lower-case, spaces as underscores ("Ankle boot" -> "ankle_boot")."""
    return "_".join(class_name.lower().split())


def wordnet_graph(
    class_names: list[str], root: Path | str = WORDNET_DIR, max_depth: int = WORDNET_MAX_DEPTH
) -> KnowledgeGraph:
    """``is_a`` triples from each class up its WordNet hypernym chain (``max_depth`` steps).

    ``("sneaker", "is_a", "shoe"), ("shoe", "is_a", "footwear"), ...``: classes become
    entities under :func:`class_entity` names and meet at shared ancestors such as
    ``clothing`` or ``footwear``.
    """
    if not class_names:
        raise ConfigError("wordnet_graph needs at least one class name")
    triples = []
    for class_name in class_names:
        chain = [class_entity(class_name), *hypernym_chain(class_name, root, max_depth)]
        if len(chain) == 1:
            raise ConfigError(f"{class_name!r} has no hypernym in WordNet; use max_depth >= 1")
        triples += [(child, "is_a", parent) for child, parent in itertools.pairwise(chain)]
    return KnowledgeGraph.from_triples(triples)
