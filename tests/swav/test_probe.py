import pytest
import torch

from playground.data import ImageDataset
from playground.errors import ConfigError, DataFormatError
from playground.models import build_model
from playground.swav.diagnostics import purity
from playground.swav.probe import balanced_subset, finetune, fit_linear, linear_probe


def test_balanced_subset_takes_the_fraction_of_every_class():
    labels = torch.tensor([0] * 100 + [1] * 50 + [2] * 10)
    chosen = balanced_subset(labels, 0.1, seed=0)
    assert torch.bincount(labels[chosen]).tolist() == [10, 5, 1]
    assert chosen.unique().numel() == chosen.numel() and torch.equal(chosen, chosen.sort().values)
    assert torch.equal(chosen, balanced_subset(labels, 0.1, seed=0))
    assert not torch.equal(chosen, balanced_subset(labels, 0.1, seed=1))
    assert balanced_subset(labels, 0.001).numel() == 3  # at least one per class
    assert balanced_subset(labels, 1.0).numel() == 160
    with pytest.raises(ConfigError, match="fraction"):
        balanced_subset(labels, 0.0)


def test_linear_probe_separates_separable_features_and_not_noise():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (600,), generator=generator)
    centres = torch.randn(3, 8, generator=generator) * 3
    features = centres[labels] + torch.randn(600, 8, generator=generator)
    assert linear_probe(features[:400], labels[:400], features[400:], labels[400:], 3) > 0.95
    noise = torch.randn(600, 8, generator=generator)
    assert linear_probe(noise[:400], labels[:400], noise[400:], labels[400:], 3) < 0.5


def test_fit_linear_reaches_the_logistic_regression_optimum():
    from sklearn.linear_model import LogisticRegression

    generator = torch.Generator().manual_seed(1)
    x = torch.randn(300, 5, generator=generator)
    y = (x[:, 0] + 0.5 * torch.randn(300, generator=generator) > 0).long()
    l2 = 1e-2
    head = fit_linear(x, y, 2, l2=l2)
    # 2 softmax rows with l2 ||W||^2 = one logistic weight w = W1 - W0 with l2/2 ||w||^2: C = 1 / (l2 N)
    reference = LogisticRegression(C=1 / (l2 * 300), tol=1e-8, max_iter=1000).fit(x.numpy(), y.numpy())
    with torch.no_grad():
        ours = head(x).softmax(1)[:, 1]
    theirs = torch.from_numpy(reference.predict_proba(x.numpy())[:, 1]).float()
    assert torch.allclose(ours, theirs, atol=0.02)


def test_fit_linear_rejects_mismatched_shapes():
    with pytest.raises(DataFormatError, match="features"):
        fit_linear(torch.randn(5, 3), torch.zeros(4, dtype=torch.long), 2)


def test_finetune_learns_a_tiny_task():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(64) % 2
    images = torch.rand(64, 1, 8, 8, generator=generator) * 0.2
    images[labels == 1, :, :4] += 0.8  # class 1 is bright on top
    data = ImageDataset(images, labels, ["dark", "bright"])
    torch.manual_seed(0)
    encoder = build_model(
        "small_cnn", in_channels=1, num_classes=0, embedding_dim=8, width=4, pool_size=2, dropout=0.0
    )
    assert finetune(encoder, 8, data, data, steps=40, batch_size=16, lr=1e-2) > 0.95
    with pytest.raises(ConfigError, match="step"):
        finetune(encoder, 8, data, data, steps=0)


def test_purity_counts_the_majority_class_of_each_cluster():
    clusters = torch.tensor([0, 0, 0, 1, 1, 2])
    labels = torch.tensor([5, 5, 1, 2, 2, 7])
    assert purity(clusters, labels) == pytest.approx(5 / 6)
    assert purity(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 2, 3])) == 0.25
