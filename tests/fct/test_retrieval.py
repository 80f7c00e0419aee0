import pytest
import torch
from sklearn.metrics import average_precision_score

from playground.fct.retrieval import distances, nearest, retrieval_metrics


def reference(query, gallery, labels, distance="l2", rows=None):
    """Per-query loops with scikit-learn's average precision: the slow, obvious version."""
    dist = distances(query, gallery, distance)
    aps, top1, top5 = [], 0, 0
    for i in rows if rows is not None else range(len(labels)):
        keep = torch.arange(len(labels)) != i
        same = (labels[keep] == labels[i]).numpy()
        order = dist[i][keep].argsort()
        top1 += bool(same[order[:1]].any())
        top5 += bool(same[order[:5]].any())
        aps.append(average_precision_score(same, -dist[i][keep].numpy()))
    n = len(aps)
    return {"top1": top1 / n, "top5": top5 / n, "mAP": sum(aps) / n}


@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_matches_the_per_query_reference(distance):
    torch.manual_seed(0)
    labels = torch.randint(0, 6, (240,))
    centres = torch.randn(6, 12)
    query = centres[labels] + 0.9 * torch.randn(240, 12)
    gallery = query + 0.4 * torch.randn(240, 12)
    got = retrieval_metrics(query, gallery, labels, distance, chunk=37)
    want = reference(query, gallery, labels, distance)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-5)


def test_a_subset_of_queries_is_scored_against_the_whole_gallery():
    torch.manual_seed(1)
    labels = torch.randint(0, 5, (200,))
    gallery = torch.randn(5, 8)[labels] + torch.randn(200, 8)
    rows = torch.tensor([3, 17, 60, 61, 150, 199])
    got = retrieval_metrics(gallery[rows] + 0.1, gallery, labels, query_rows=rows)
    want = reference(gallery + 0.1, gallery, labels, rows=rows.tolist())
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-5)
    with pytest.raises(ValueError, match="query rows"):
        retrieval_metrics(gallery[:5], gallery, labels, query_rows=rows)


def test_a_query_never_matches_itself():
    # each point's nearest *other* point is of the other class; only a self-match could hit
    labels = torch.tensor([0, 1, 0, 1])
    x = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    scores = retrieval_metrics(x, x, labels)
    assert scores["top1"] == 0.0
    assert scores["top5"] == 1.0  # the same-class item is further down the ranking
    assert scores["mAP"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 3 + 1 / 2) / 4)  # partner at rank 2, 3, 3, 2


def test_perfect_and_random_embeddings():
    torch.manual_seed(1)
    labels = torch.arange(10).repeat_interleave(30)
    perfect = torch.nn.functional.one_hot(labels).float()
    assert retrieval_metrics(perfect, perfect, labels) == {
        "top1": 1.0,
        "top5": 1.0,
        "mAP": pytest.approx(1.0),
    }
    noise = torch.randn(300, 32)
    chance = retrieval_metrics(noise, torch.randn(300, 32), labels)
    assert chance["mAP"] < 0.2 and chance["top1"] < 0.25


def test_nearest_excludes_and_sorts():
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    indices, values = nearest(x, x, k=2, exclude=torch.arange(4))
    assert indices.tolist() == [[1, 2], [0, 2], [1, 3], [2, 1]]
    assert (values[:, 0] <= values[:, 1]).all()


def test_bad_shapes_are_clear():
    with pytest.raises(ValueError, match="same D"):
        retrieval_metrics(torch.zeros(4, 3), torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="same images"):
        retrieval_metrics(torch.zeros(4, 3), torch.zeros(5, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="no query"):
        retrieval_metrics(torch.randn(4, 3), torch.randn(4, 3), torch.arange(4))
