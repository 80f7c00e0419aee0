import torch

from playground.fct.transformation import Transformation, train_transformation, transform
from playground.models import build_model, count_macs


def test_shapes_and_cost_under_two_percent_of_the_new_model():
    h = Transformation(old_dim=128, side_dim=128, new_dim=128)
    assert transform(h, torch.randn(5, 128), torch.randn(5, 128)).shape == (5, 128)
    new = build_model("small_cnn", in_channels=1, num_classes=10, width=32, pool_size=7)
    macs_h = count_macs(h, torch.zeros(1, 128), torch.zeros(1, 128))
    assert macs_h <= 0.02 * count_macs(new, torch.zeros(1, 1, 28, 28))


def test_side_info_carries_what_the_old_embedding_lost():
    # new = f(old, side) where old alone cannot see the side part: side-info must help
    torch.manual_seed(0)
    n = 3000
    old, side = torch.randn(n, 8), torch.randn(n, 8)
    new = torch.cat([old.tanh(), side.sin()], dim=1)
    h, history = train_transformation(old, side, new, hidden=64, epochs=25, seed=0)
    h0, _ = train_transformation(old, old, new, hidden=64, epochs=25, seed=0)
    test_old, test_side = torch.randn(500, 8), torch.randn(500, 8)
    target = torch.cat([test_old.tanh(), test_side.sin()], dim=1)
    err = (transform(h, test_old, test_side) - target).pow(2).mean()
    err0 = (transform(h0, test_old, test_old) - target).pow(2).mean()
    assert history.series("train/loss")[-1] < history.series("train/loss")[0]
    assert err < 0.3 * err0
