import torch

from playground.data import load_dataset
from playground.fct.side_info import SIDE_INFO_TRAINERS, SideInfoSpec, train_side_info, train_swav_side_info


def test_swav_is_a_registered_side_info_trainer():
    from playground.fct.experiment import Config

    assert SIDE_INFO_TRAINERS["swav"] is train_swav_side_info
    assert Config(side_info=SideInfoSpec(method="swav")).side_info.method == "swav"


def test_swav_side_info_has_spec_dim_numbers_and_is_not_collapsed():
    images = load_dataset("digits", "train").images[:256]
    spec = SideInfoSpec(method="swav", dim=16, width=8, pool_size=2, epochs=2, batch_size=64)
    events = []
    encoder = train_side_info(images, spec, seed=0, progress=lambda event: events.append(event))
    assert not encoder.training and events
    with torch.no_grad():
        side = encoder(images).embedding
    assert side.shape == (256, 16) and torch.isfinite(side).all()
    # measured: per-dimension std >= 0.062 after these 8 steps (0.002 for the untrained encoder)
    assert side.std(dim=0).min() > 0.01  # every dimension varies over the images
    centred = torch.nn.functional.normalize(side - side.mean(0), dim=1)
    assert (centred @ centred.T).abs().mean() < 0.5  # not all on one line (measured 0.27)


def test_swav_settings_of_the_spec_reach_the_trainer(monkeypatch):
    import playground.fct.side_info as side_info

    seen = {}
    monkeypatch.setattr(
        side_info, "train_swav", lambda model, images, config, **kw: seen.update(config=config, model=model)
    )
    spec = SideInfoSpec(method="swav", dim=16, prototypes=12, small_crops=2, temperature=0.3)
    train_side_info(torch.rand(8, 1, 8, 8), spec)
    config = seen["config"]
    assert (config.prototypes, config.small_crops, config.temperature) == (12, 2, 0.3)
    assert seen["model"].prototypes.weight.shape == (12, 32)
