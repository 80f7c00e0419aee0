"""The SwAV recipe's quick preset end to end on real Fashion-MNIST (CI size, about 1.5 minutes on a core)."""

import math

import pytest

from playground.core.runner import config_from_recipe
from playground.swav.experiment import chosen_inits
from playground.swav.report import probe_name
from tests.conftest import REPO, needs_fashion_mnist

pytestmark = [pytest.mark.slow, needs_fashion_mnist()]


def test_quick_preset_trains_swav_and_reports_every_probe():
    module, config = config_from_recipe(REPO / "recipes" / "swav_fashion.toml", "quick")
    result = module.run(config)
    values = result.metrics.values
    # measured (seed 0, one thread): loss 2.47 against log 30 = 3.40, purity 0.53, 29 of 30 prototypes used
    assert values["ssl/swav/final_loss"] < math.log(config.swav.prototypes) - 0.5  # off the uniform plateau
    assert values["ssl/swav/prototype_purity"] > 0.4 and values["ssl/swav/used_prototypes"] >= 20
    # measured 0.79 (SwAV), 0.78 (random), 0.83 (supervised) with all labels
    for init in chosen_inits(config.methods):
        assert values[probe_name(init, 1.0)] > 0.7
        assert values[probe_name(init, 1.0)] >= values[probe_name(init, 0.01)]
    assert values[probe_name("supervised", 1.0)] > values[probe_name("random_init", 1.0)]
    assert values["ssl/swav/lowshot_10/accuracy"] > 0.7 and values["ssl/random_init/lowshot_1/accuracy"] > 0.5
    assert "**Check: SwAV's linear probe is" in result.report
