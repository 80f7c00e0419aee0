"""The uncertainty methods: temperature fitting, MC dropout, the ensemble and the pyro BNN."""

from __future__ import annotations

import pyro
import pyro.poutine as poutine
import pytest
import torch

from playground.data import load_dataset
from playground.errors import ConfigError, DataFormatError
from playground.uncertainty.bnn import BayesianNet
from playground.uncertainty.methods import (
    DeepEnsemble,
    MCDropout,
    NetSpec,
    SingleModel,
    TemperatureScaled,
    fit_temperature,
)

SPEC = NetSpec(width=8, pool_size=2, embedding_dim=16, epochs=4, batch_size=64, lr=3e-3)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train"), load_dataset("digits", "test")


@pytest.fixture(scope="module")
def single(digits):
    model = SingleModel(SPEC, seed=0)
    model.fit(digits[0])
    return model


def test_fit_temperature_recovers_the_temperature_the_labels_were_drawn_with():
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(20000, 5, generator=generator)
    labels = torch.multinomial(torch.softmax(logits / 2.5, 1), 1, generator=generator).squeeze(1)
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.05)
    with pytest.raises(DataFormatError):
        fit_temperature(logits[:0], labels[:0])


def test_temperature_scaling_keeps_predictions_and_needs_a_validation_split(digits, single):
    train, test = digits
    scaled = TemperatureScaled(single)
    scaled.fit(train, test)
    base, after = single.predict(test.images), scaled.predict(test.images)
    assert torch.equal(base.mean.argmax(1), after.mean.argmax(1)) and scaled.temperature != 1.0
    assert torch.allclose(after.logits, base.logits / scaled.temperature)
    with pytest.raises(ConfigError, match="validation"):
        TemperatureScaled(single).fit(train, None)


def test_mc_dropout_samples_differ_and_repeat_with_the_seed(digits, single):
    images = digits[1].images[:64]
    method = MCDropout(single, samples=6, seed=3)
    first, again = method.predict(images), method.predict(images)
    assert first.probs.shape == (6, 64, 10) and torch.equal(first.probs, again.probs)
    assert first.probs.std(0).max() > 1e-3  # the masks differ between samples
    assert not single.model.training and all(not m.training for m in single.model.modules())
    spec = NetSpec(**{**SPEC.__dict__, "dropout": 0.0})
    no_dropout = SingleModel(spec, model=spec.build(1, 10))
    with pytest.raises(ConfigError, match="dropout > 0"):
        MCDropout(no_dropout, samples=2).predict(images)


def test_ensemble_reuses_the_single_model_and_trains_distinct_members(digits, single):
    ensemble = DeepEnsemble(SPEC, members=3, seed=0, first=single)
    ensemble.fit(digits[0])
    assert ensemble.models[0] is single.model and len(ensemble.models) == 3
    prediction = ensemble.predict(digits[1].images)
    assert prediction.probs.shape[0] == 3 and prediction.probs.std(0).mean() > 1e-3
    assert ensemble.parameters == 3 * single.parameters
    accuracy = (prediction.mean.argmax(1) == digits[1].labels).float().mean()
    assert accuracy > 0.85
    with pytest.raises(DataFormatError, match="non-empty image batch"):
        ensemble.predict(torch.zeros(0, 1, 8, 8))


def test_elbo_weights_the_likelihood_by_n_over_b_and_the_kl_once():
    """The ELBO of one minibatch is (N/B)·Σ log p(y_i|x_i,w) + log p(w) - log q(w): KL per datum is 1/N."""
    bnn = BayesianNet(SPEC, layers="last", samples=2, seed=0)
    bnn.build(1, 10)
    images, labels = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    index, size = torch.arange(100, 116), 5000
    with pyro.settings.context(module_local_params=True):
        pyro.set_rng_seed(1)
        guide_trace = poutine.trace(bnn.guide).get_trace(images, labels, index, size)
        model_trace = poutine.trace(poutine.replay(bnn.model, trace=guide_trace)).get_trace(
            images, labels, index, size
        )
        pyro.set_rng_seed(1)
        loss = pyro.infer.Trace_ELBO().differentiable_loss(bnn.model, bnn.guide, images, labels, index, size)
    label_site = model_trace.nodes["label"]
    assert label_site["scale"] == pytest.approx(size / 16)
    weights = [n for n in model_trace.nodes.values() if n["type"] == "sample" and not n["is_observed"]]
    assert weights and all(n["scale"] == 1.0 for n in weights)
    log_likelihood = label_site["fn"].log_prob(labels).sum()
    log_prior = sum(n["fn"].log_prob(n["value"]).sum() for n in weights)
    log_q = sum(
        n["fn"].log_prob(n["value"]).sum() for n in guide_trace.nodes.values() if n["type"] == "sample"
    )
    manual = -(size / 16 * log_likelihood + log_prior - log_q)
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)


def test_bnn_layers_choose_which_weights_are_random():
    last, everything = BayesianNet(SPEC, layers="last"), BayesianNet(SPEC, layers="all")
    last.build(1, 10), everything.build(1, 10)

    def sites(bnn):
        trace = poutine.trace(bnn.model).get_trace(torch.rand(2, 1, 8, 8))
        return {
            name for name, node in trace.nodes.items() if node["type"] == "sample" and name != "data"
        }  # not the plate

    with pyro.settings.context(module_local_params=True):
        assert sites(last) == {"net.classifier.linear.weight", "net.classifier.linear.bias", "label"}
        assert "net.backbone.stages.0.convs.0.0.weight" in sites(everything)
    with pytest.raises(ConfigError, match="'last', 'head' or 'all'"):
        BayesianNet(SPEC, layers="middle")


def test_bnn_learns_and_uses_the_same_weight_draws_for_every_batch(digits):
    train, test = digits
    bnn = BayesianNet(NetSpec(**{**SPEC.__dict__, "epochs": 8}), samples=4, seed=0)
    bnn.fit(train)
    assert bnn.elbo_per_datum[-1] < bnn.elbo_per_datum[0]
    weights = bnn.weight_samples()
    whole = bnn.predict(test.images, weights=weights)
    halves = torch.cat(
        [
            bnn.predict(test.images[:200], weights=weights).probs,
            bnn.predict(test.images[200:], weights=weights).probs,
        ],
        dim=1,
    )
    assert torch.allclose(whole.probs, halves, atol=1e-6)
    assert whole.probs.std(0).mean() > 1e-4  # posterior samples differ
    assert (whole.mean.argmax(1) == test.labels).float().mean() > 0.8
