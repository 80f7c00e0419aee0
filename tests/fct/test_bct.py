import pytest
import torch
from torch import nn

from playground.fct.bct import BCTLoss, extend_old_classifier, influence_targets
from playground.models import ModelOutput


def test_influence_targets_append_rows_for_unseen_classes():
    assert influence_targets([0, None, 1, None], old_rows=2).tolist() == [0, 2, 1, 3]
    with pytest.raises(ValueError):
        influence_targets([5], old_rows=2)


def test_synthesised_rows_are_rescaled_class_means():
    old = nn.Linear(4, 2)
    with torch.no_grad():
        old.weight.copy_(torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0]]))
        old.bias.copy_(torch.tensor([1.0, 3.0]))
    embeddings = torch.tensor([[0, 0, 5.0, 0], [0, 0, 7.0, 0], [1.0, 0, 0, 0]])
    labels = torch.tensor([1, 1, 0])
    extended = extend_old_classifier(old, embeddings, labels, [0, None])
    assert extended.weight.shape == (3, 4)
    assert torch.allclose(
        extended.weight[2], torch.tensor([0, 0, 2.0, 0])
    )  # direction of the mean, old row norm
    assert extended.bias[2] == pytest.approx(2.0)
    assert not extended.weight.requires_grad


def test_loss_adds_the_weighted_influence_term():
    torch.manual_seed(0)
    old = extend_old_classifier(
        nn.Linear(3, 2), torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 0, 1]), [0, 1, None]
    )
    output = ModelOutput(embedding=torch.randn(6, 3), logits=torch.randn(6, 3))
    target = torch.tensor([0, 1, 2, 2, 0, 1])
    plain = BCTLoss(old, influence_targets([0, 1, None], 2), weight=0.0)(output, target)
    with_influence = BCTLoss(old, influence_targets([0, 1, None], 2), weight=2.0)(output, target)
    influence = torch.nn.functional.cross_entropy(old(output.embedding), target)
    assert with_influence.item() == pytest.approx((plain + 2 * influence).item(), rel=1e-5)
