"""Tests for the retrieval index (torch, faiss, and faiss's glue through a stand-in) and the
retrieval-augmented context."""

from __future__ import annotations

import logging
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from playground.errors import ConfigError, DataFormatError
from playground.retrieval import index as index_module
from playground.retrieval.context import (
    RetrievalContext,
    RetrievalFusion,
    knn_predict,
    retrieve,
)
from playground.retrieval.index import ExactIndex, FaissIndex, build_index


@pytest.fixture
def no_faiss(monkeypatch):
    """A machine without faiss-cpu: importing it fails."""
    monkeypatch.setitem(sys.modules, "faiss", None)


def random_database(n=60, d=8, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g), classes


def brute_force(database, queries, k):
    sims = F.normalize(queries, dim=1) @ F.normalize(database, dim=1).T
    order = sims.argsort(dim=1, descending=True)[:, :k]
    return sims.gather(1, order), order


class FakeIndexFlatIP:
    """numpy stand-in for faiss.IndexFlatIP (exact inner-product search), to test FaissIndex's glue."""

    def __init__(self, dim):
        self.vectors = np.zeros((0, dim), dtype=np.float32)

    def add(self, vectors):
        assert vectors.dtype == np.float32 and vectors.flags.c_contiguous
        self.vectors = np.concatenate([self.vectors, vectors])

    def search(self, queries, k):
        sims = queries @ self.vectors.T
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, order, axis=1).astype(np.float32), order.astype(np.int64)


@pytest.fixture
def fake_faiss(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", types.SimpleNamespace(IndexFlatIP=FakeIndexFlatIP))


def test_search_returns_true_top_k_in_descending_order():
    database, labels, classes = random_database()
    queries = torch.randn(17, 8, generator=torch.Generator().manual_seed(1))
    sims, ids = ExactIndex(database, labels, classes).search(queries, 5)
    want_sims, want_ids = brute_force(database, queries, 5)
    assert sims.shape == ids.shape == (17, 5) and ids.dtype == torch.int64
    assert torch.equal(ids, want_ids)
    torch.testing.assert_close(sims, want_sims)
    assert (sims[:, :-1] >= sims[:, 1:]).all()


def test_self_query_finds_itself_first_and_exclude_removes_it():
    database, labels, classes = random_database()
    index = ExactIndex(database, labels, classes)
    own = torch.arange(len(database))
    _, ids = index.search(database, 3)
    assert torch.equal(ids[:, 0], own)
    _, ids = index.search(database, len(database) - 1, exclude=own)
    assert not (ids == own[:, None]).any()
    exclude = torch.full((len(database),), -1)
    exclude[::2] = own[::2]
    _, ids = index.search(database, 1, exclude=exclude)
    assert torch.equal(ids[1::2, 0], own[1::2]) and not torch.equal(ids[::2, 0], own[::2])


def test_chunking_matches_a_single_chunk():
    database, labels, classes = random_database(n=50)
    queries = torch.randn(23, 8, generator=torch.Generator().manual_seed(2))
    exclude = torch.randint(-1, 50, (23,), generator=torch.Generator().manual_seed(3))
    one = ExactIndex(database, labels, classes, chunk_size=1024).search(queries, 6, exclude=exclude)
    tiny = ExactIndex(database, labels, classes, chunk_size=4).search(queries, 6, exclude=exclude)
    assert torch.equal(one[1], tiny[1])
    torch.testing.assert_close(one[0], tiny[0])


def test_faiss_index_glue_matches_exact_index(fake_faiss):
    database, labels, classes = random_database()
    own = torch.arange(len(database))
    faiss_index, exact = (
        build_index(database, labels, classes, backend="faiss"),
        ExactIndex(database, labels, classes),
    )
    assert isinstance(faiss_index, FaissIndex)
    for exclude in (None, own, torch.where(own % 3 == 0, own, -1)):
        got, want = (
            faiss_index.search(database, 4, exclude=exclude),
            exact.search(database, 4, exclude=exclude),
        )
        assert torch.equal(got[1], want[1])
        torch.testing.assert_close(got[0], want[0])


def test_auto_backend_prefers_faiss_and_logs_its_choice(fake_faiss, monkeypatch, caplog):
    monkeypatch.setattr(index_module, "_auto_choice_logged", False)
    database, labels, classes = random_database()
    with caplog.at_level(logging.INFO, logger="playground.retrieval"):
        assert isinstance(build_index(database, labels, classes), FaissIndex)
        build_index(database, labels, classes)
    assert sum("chose 'faiss'" in record.getMessage() for record in caplog.records) == 1


def test_real_faiss_matches_the_exact_index():
    database, labels, classes = random_database(n=200, d=16)
    got = FaissIndex(database, labels, classes).search(database[:20], 5, exclude=torch.arange(20))
    want = ExactIndex(database, labels, classes).search(database[:20], 5, exclude=torch.arange(20))
    assert torch.equal(got[1], want[1])
    torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-5)


def test_auto_backend_falls_back_to_torch(no_faiss):
    database, labels, classes = random_database()
    assert isinstance(build_index(database, labels, classes, backend="auto"), ExactIndex)
    assert isinstance(build_index(database, labels, classes, backend="torch"), ExactIndex)


def test_weights_and_label_distribution_are_distributions():
    database, labels, classes = random_database()
    index = ExactIndex(database, labels, classes)
    context = retrieve(index, database[:10] + 0.3, k=7, temperature=0.5)
    assert isinstance(context, RetrievalContext)
    assert context.embedding.shape == (10, 8) and context.label_distribution.shape == (10, classes)
    assert context.neighbours.shape == context.similarities.shape == context.weights.shape == (10, 7)
    torch.testing.assert_close(context.weights.sum(1), torch.ones(10))
    torch.testing.assert_close(context.label_distribution.sum(1), torch.ones(10))
    want = (context.weights[:, :, None] * index.embeddings[context.neighbours]).sum(1)
    torch.testing.assert_close(context.embedding, want)


def test_small_temperature_gives_one_hot_on_the_nearest_label():
    database, labels, classes = random_database()
    queries = torch.randn(12, 8, generator=torch.Generator().manual_seed(4))
    context = retrieve(ExactIndex(database, labels, classes), queries, k=5, temperature=1e-6)
    nearest = labels[context.neighbours[:, 0]]
    torch.testing.assert_close(context.label_distribution, F.one_hot(nearest, classes).float())
    assert torch.equal(knn_predict(context), nearest)


def test_knn_predict_separates_two_gaussian_blobs():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 4.0, 0.0, 0.0], [-4.0, 0.0, 4.0, 0.0]])

    def blobs(n):
        y = torch.randint(0, 2, (n,), generator=g)
        return centres[y] + torch.randn(n, 4, generator=g), y

    (train_x, train_y), (test_x, test_y) = blobs(200), blobs(200)
    context = retrieve(build_index(train_x, train_y, 2, backend="torch"), test_x, k=8)
    assert (knn_predict(context) == test_y).float().mean() > 0.95
    own = retrieve(build_index(train_x, train_y, 2, backend="torch"), train_x, k=8, exclude=torch.arange(200))
    assert (knn_predict(own) == train_y).float().mean() > 0.95


def test_errors_name_the_problem():
    database, labels, classes = random_database()
    index = ExactIndex(database, labels, classes)
    with pytest.raises(DataFormatError, match=r"\(Q, 8\).*\(3, 5\)"):
        index.search(torch.randn(3, 5), 2)
    with pytest.raises(ConfigError, match="k=61"):
        index.search(database, 61)
    with pytest.raises(ConfigError, match="k=60.*one excluded"):
        index.search(database, 60, exclude=torch.arange(60))
    with pytest.raises(DataFormatError, match="empty"):
        ExactIndex(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long), classes)
    with pytest.raises(DataFormatError, match="2-D"):
        ExactIndex(torch.zeros(8), torch.zeros(8, dtype=torch.long), classes)
    with pytest.raises(DataFormatError, match=r"\(60,\).*\(59,\)"):
        ExactIndex(database, labels[:-1], classes)
    with pytest.raises(ConfigError, match="unknown retrieval backend 'annoy'"):
        build_index(database, labels, classes, backend="annoy")
    with pytest.raises(ConfigError, match="temperature"):
        retrieve(index, database, temperature=0.0)


def test_faiss_backend_without_faiss_says_how_to_install_it(no_faiss):
    database, labels, classes = random_database()
    with pytest.raises(ConfigError, match=r"faiss-cpu: pip install faiss-cpu"):
        build_index(database, labels, classes, backend="faiss")


def test_retrieval_fusion_shape_and_gradients():
    torch.manual_seed(0)
    database, labels, classes = random_database()
    context = retrieve(ExactIndex(database, labels, classes), database[:6], k=4, exclude=torch.arange(6))
    fusion = RetrievalFusion(query_dim=5, index_dim=8, num_classes=classes, out_dim=3)
    query = torch.randn(6, 5, requires_grad=True)
    out = fusion(query, context)
    assert out.shape == (6, 3)
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.parameters())
    assert query.grad is not None and query.grad.abs().sum() > 0
    with pytest.raises(DataFormatError, match="query_embedding"):
        fusion(torch.randn(6, 4), context)
