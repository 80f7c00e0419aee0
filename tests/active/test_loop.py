import math

import pytest
import torch

from playground.active import learner as learner_module
from playground.active.learner import ActiveCNN, Learner, TrainSpec, mc_probs
from playground.active.loop import LoopSpec, balanced_start, labels_to_target, run_loop
from playground.data import load_dataset
from playground.errors import ConfigError

TINY_TRAIN = TrainSpec(epochs=2, min_steps=5, max_steps=10, batch_size=32, replay=7, finetune_steps=2)


@pytest.fixture(scope="module")
def digits():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    return train, test.subset(torch.arange(150))


def test_balanced_start_covers_every_class():
    labels = torch.arange(10).repeat(30)
    chosen = balanced_start(labels, 20, torch.Generator().manual_seed(0))
    assert chosen.unique().numel() == 20
    assert torch.bincount(labels[chosen], minlength=10).tolist() == [2] * 10


def test_mc_dropout_probs_are_repeatable_and_leave_the_rng_alone():
    torch.manual_seed(0)
    model = ActiveCNN(1, 3, 12, width=4)
    images = torch.rand(5, 1, 12, 12)
    state = torch.random.get_rng_state()
    a, b = mc_probs(model, images, 6, seed=1), mc_probs(model, images, 6, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())
    assert a.shape == (6, 5, 3) and torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])  # different masks per pass
    assert torch.allclose(a.sum(-1), torch.ones(6, 5), atol=1e-5)
    deterministic = torch.softmax(model.eval()(images).logits, -1)
    assert torch.allclose(mc_probs(model, images, 1, seed=1)[0], deterministic, atol=1e-6)


def test_loop_labels_query_by_query_without_repeats(digits):
    pool, test = digits
    history = run_loop(
        pool,
        test,
        "entropy",
        "scratch",
        LoopSpec(20, 15, 50, pool_subset=200, mc_samples=4),
        TINY_TRAIN,
        seed=0,
    )
    assert history.series("labels") == [20, 35, 50]
    assert history.labelled.shape == (50,) and history.labelled.unique().numel() == 50
    assert all(0 <= a <= 1 for a in history.series("accuracy"))
    assert math.isnan(history.rounds[0].forgetting) and not math.isnan(history.rounds[1].forgetting)


def test_finetune_replay_trains_on_new_plus_replayed_labels(digits, monkeypatch):
    pool, test = digits
    sizes, devices = [], set()
    original = learner_module.train_on

    def recording(model, images, labels, spec, epochs, seed, device):
        sizes.append(images.shape[0])
        devices.add(device)
        return original(model, images, labels, spec, epochs, seed, device)

    monkeypatch.setattr(learner_module, "train_on", recording)
    run_loop(
        pool,
        test,
        "margin",
        "finetune_replay",
        LoopSpec(20, 10, 40, pool_subset=100, mc_samples=2),
        TINY_TRAIN,
        seed=0,
        device="cpu",
    )
    assert sizes == [20, 10 + 7, 10 + 7]  # first round from scratch, then new + replay
    assert devices == {"cpu"}  # the run's device reaches the training, not a field of the [train] section


def test_learner_restarts_from_the_same_weights_under_scratch(digits):
    pool, _ = digits
    learner = Learner(TINY_TRAIN, "scratch", pool.image_shape, pool.num_classes, seed=3)
    first = {k: v.clone() for k, v in learner.initial_states[0].items()}
    learner.update(pool.images[:20], pool.labels[:20], torch.arange(20))
    assert all(torch.equal(first[k], v) for k, v in learner.initial_states[0].items())
    with pytest.raises(ConfigError, match="policy"):
        Learner(TINY_TRAIN, "online", pool.image_shape, pool.num_classes, seed=0)


def test_loop_spec_errors(digits):
    pool, test = digits
    with pytest.raises(ConfigError, match="every class"):
        run_loop(pool, test, "random", "scratch", LoopSpec(initial=5, budget=50), TINY_TRAIN, 0)
    with pytest.raises(ConfigError, match="exceeds"):
        run_loop(pool, test, "random", "scratch", LoopSpec(budget=10_000), TINY_TRAIN, 0)
    with pytest.raises(ConfigError, match="unknown acquisition"):
        run_loop(pool, test, "coreset", "scratch", LoopSpec(), TINY_TRAIN, 0)


def test_labels_to_target_reads_the_first_crossing(digits):
    pool, test = digits
    history = run_loop(
        pool,
        test,
        "random",
        "scratch",
        LoopSpec(20, 20, 60, pool_subset=100, mc_samples=2),
        TINY_TRAIN,
        seed=0,
    )
    history.rounds[1].accuracy, history.rounds[2].accuracy = 0.85, 0.9
    history.rounds[0].accuracy = 0.1
    assert labels_to_target(history, 0.8) == 40
    assert labels_to_target(history, 0.95) == math.inf


def test_an_ensemble_posterior_gives_one_sample_per_member(digits):
    pool, test = digits
    history = run_loop(
        pool,
        test,
        "bald",
        "scratch",
        LoopSpec(20, 20, 40, pool_subset=100, mc_samples=5, members=3),
        TINY_TRAIN,
        seed=0,
    )
    learner = history.learner
    assert len(learner.models) == 3 and history.series("labels") == [20, 40]
    weights = [m.classifier[1].weight for m in learner.models]
    assert not torch.allclose(weights[0], weights[1])  # members differ (own init and data order)
    probs = learner.probs(test.images[:7], samples=5, seed=0)
    assert probs.shape == (3, 7, 10)  # members, not MC passes
    mean_prediction = probs.mean(0).argmax(1)
    expected = (mean_prediction == test.labels[:7]).float().mean().item()
    assert learner.accuracy(test.images[:7], test.labels[:7]) == pytest.approx(expected)
    with pytest.raises(ConfigError, match="member"):
        Learner(TINY_TRAIN, "scratch", pool.image_shape, pool.num_classes, seed=0, members=0)
