"""Every loader of a safetensors checkpoint, fed damaged and edited copies of a checkpoint the project
wrote (:mod:`tests.loader_cases`): each either reads it or raises a :class:`PlaygroundError`, never a
``KeyError``, ``AttributeError``, ``IndexError``... (issue 25). Bounded: about 20 s in all."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.errors import PlaygroundError
from tests.hostile import edited_metadata, mutated, mutations, plant
from tests.loader_cases import CASES, metadata_of, read_tensors

pytestmark = pytest.mark.slow
BOUNDED = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Per case: the checkpoint, its bytes, its tensors and metadata, and the call that reads it."""
    out = {}
    for name, make in CASES.items():
        path, read = make(tmp_path_factory.mktemp(name.replace(" ", "_")))
        out[name] = (path, path.read_bytes(), read_tensors(path), metadata_of(path), read)
    return out


def reads_or_refuses(read) -> None:
    try:
        read()
    except PlaygroundError:
        pass


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_bytes_are_read_or_refused_clearly(written, case):
    path, original, _, _, read = written[case]

    @BOUNDED
    @given(mutation=mutations())
    def check(mutation):
        path.write_bytes(mutated(original, *mutation))
        reads_or_refuses(read)

    try:
        check()
    finally:
        path.write_bytes(original)


def edited_tensors(tensors: dict[str, torch.Tensor]):
    """Some tensors dropped, flattened, given a leading dimension or cast to another kind."""
    edits = {
        "keep": lambda t: t,
        "drop": lambda t: None,
        "flatten": lambda t: t.reshape(-1),
        "unsqueeze": lambda t: t.unsqueeze(0),
        "int": lambda t: t.to(torch.int64),
        "float": lambda t: t.to(torch.float32),
    }
    names = sorted(tensors)
    choices = st.lists(st.sampled_from(list(edits)), min_size=len(names), max_size=len(names))

    def apply(picked):
        out = {n: edits[e](tensors[n]) for n, e in zip(names, picked)}
        return {n: t.contiguous() for n, t in out.items() if t is not None}

    weights = st.sampled_from(["keep"] * 6 + list(edits))
    return st.lists(weights, min_size=len(names), max_size=len(names)).map(apply) | choices.map(apply)


@pytest.mark.parametrize("case", list(CASES))
def test_edited_metadata_and_tensors_are_read_or_refused_clearly(written, case):
    path, original, tensors, metadata, read = written[case]

    @BOUNDED
    @given(data=st.data())
    def check(data):
        text = data.draw(edited_metadata(metadata))
        state = data.draw(edited_tensors(tensors)) if data.draw(st.booleans()) else tensors
        plant(path, state, text)
        reads_or_refuses(read)

    try:
        check()
    finally:
        path.write_bytes(original)
