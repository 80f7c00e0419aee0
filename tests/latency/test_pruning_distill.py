"""Pruning (torch-pruning) and knowledge distillation on tiny digits models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from playground.core.training import evaluate, fit, make_optimizer
from playground.data import TensorLoader, load_dataset
from playground.errors import CheckpointError, ConfigError, DataFormatError
from playground.latency.distill import Distiller, KDLoss, kd_loss
from playground.latency.pruning import PruneSpec, channel_counts, count, prune_to_target
from playground.models import build_model


def tiny(width: int = 8, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(
        "small_cnn", in_channels=1, num_classes=10, width=width, pool_size=2, dropout=0.0, embedding_dim=32
    )


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train"), load_dataset("digits", "test")


@pytest.fixture(scope="module")
def trained(digits):
    model = tiny(16)
    fit(model, TensorLoader.of(digits[0], batch_size=64, shuffle=True), epochs=6, lr=3e-3)
    return model.eval()


@pytest.mark.parametrize("importance", ["magnitude", "lamp", "taylor"])
def test_pruning_removes_half_the_macs_and_keeps_a_working_model(importance, digits):
    model = tiny(16).eval()
    example = digits[0].images[:1]
    before = channel_counts(model)
    batches = [(digits[0].images[:64], digits[0].labels[:64])]
    result = prune_to_target(
        model, example, PruneSpec(target=0.5, importance=importance), gradient_batches=batches
    )
    assert result.macs_removed >= 0.5 and result.params_after < result.params_before
    assert count(model, example) == (result.macs_after, result.params_after)
    assert sum(channel_counts(model)) < sum(before)
    assert model(digits[1].images[:5]).logits.shape == (5, 10)  # the classifier keeps every class


def test_pruning_by_parameters_in_rounds_calls_finetune_each_round(digits):
    model = tiny(16).eval()
    rounds = []
    result = prune_to_target(
        model,
        digits[0].images[:1],
        PruneSpec(target=0.4, measure="params", steps=3),
        finetune=lambda m, r: rounds.append((r, count(m, digits[0].images[:1])[1])),
    )
    assert [r for r, _ in rounds] == [1, 2, 3]
    assert rounds[0][1] > rounds[1][1] > rounds[2][1]  # each round removes more
    assert result.params_removed >= 0.4


def test_pruning_errors_are_clear(digits):
    with pytest.raises(ConfigError, match="target"):
        PruneSpec(target=1.0)
    with pytest.raises(ConfigError, match="importance"):
        PruneSpec(importance="random-ish")
    with pytest.raises(ConfigError, match="gradient_batches"):
        prune_to_target(tiny(), digits[0].images[:1], PruneSpec(importance="taylor"))
    with pytest.raises(ConfigError, match="max_channel_ratio"):
        prune_to_target(tiny().eval(), digits[0].images[:1], PruneSpec(target=0.95, max_channel_ratio=0.3))


def test_kd_loss_matches_hinton_by_hand():
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    targets = torch.tensor([0, 2, 1, 1])
    tau, alpha = 3.0, 0.3
    p_teacher = (teacher / tau).softmax(1)
    kl = (p_teacher * (p_teacher.log() - (student / tau).log_softmax(1))).sum(1).mean()
    expected = alpha * F.cross_entropy(student, targets) + (1 - alpha) * tau**2 * kl
    assert kd_loss(student, teacher, targets, alpha, tau).item() == pytest.approx(expected.item(), rel=1e-5)
    assert kd_loss(student, teacher, targets, 1.0, tau).item() == pytest.approx(
        F.cross_entropy(student, targets).item()
    )
    assert kd_loss(teacher, teacher, targets, 0.0, tau).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ConfigError):
        kd_loss(student, teacher, targets, 1.5, tau)
    with pytest.raises(DataFormatError):
        kd_loss(student, teacher[:, :2], targets)


def test_distiller_trains_only_the_student_and_keeps_the_teacher_in_eval(trained, digits):
    teacher_state = {k: v.clone() for k, v in trained.state_dict().items()}
    distiller = Distiller(tiny(4), trained)
    distiller.train()
    assert distiller.student.training and not distiller.teacher.training
    loader = TensorLoader.of(digits[0], batch_size=64, shuffle=True)
    fit(
        distiller,
        loader,
        epochs=1,
        optimizer=make_optimizer(distiller.student, "adam", 3e-3),
        loss_fn=KDLoss(0.5, 4.0),
    )
    for key, value in trained.state_dict().items():
        assert torch.equal(value, teacher_state[key]), key  # weights and batch-norm statistics untouched


def test_with_shuffled_labels_only_the_teachers_soft_targets_teach(trained, digits):
    """alpha = 0 learns the task from the teacher alone; alpha = 1 (labels only) cannot, the labels
    being noise.
    """
    train, test = digits
    noise = train.labels[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))]
    loader = TensorLoader(train.images, noise, batch_size=64, shuffle=True)
    accuracy = {}
    for alpha in (0.0, 1.0):
        distiller = Distiller(tiny(8, seed=1), trained)
        fit(
            distiller,
            loader,
            epochs=5,
            optimizer=make_optimizer(distiller.student, "adam", 3e-3),
            loss_fn=KDLoss(alpha, 4.0),
        )
        accuracy[alpha] = evaluate(distiller.student, TensorLoader.of(test, batch_size=256))["accuracy"]
    # measured, student seeds 1-3: 0.969-0.976 with alpha = 0, 0.100-0.118 with alpha = 1
    assert accuracy[0.0] > 0.8 and accuracy[1.0] < 0.3, accuracy


def test_a_pruned_model_saves_as_safetensors_and_loads_into_a_fresh_template(tmp_path, digits):
    from playground.latency.saved_models import load_resized, save_models

    model = tiny(16).eval()
    prune_to_target(model, digits[0].images[:1], PruneSpec(target=0.5, steps=1))
    path = save_models(tmp_path, {"pruned": model})[0]
    loaded = load_resized(tiny(16, seed=1), path)
    assert channel_counts(loaded) == channel_counts(model) != channel_counts(tiny(16))
    images = digits[1].images[:32]
    assert torch.equal(loaded(images).logits, model(images).logits)


def test_loading_a_model_of_another_architecture_or_a_corrupt_file_is_a_clear_error(tmp_path):
    from playground.latency.saved_models import load_resized, save_models

    path = save_models(tmp_path, {"wide": tiny(16)})[0]
    deeper = build_model(
        "small_cnn",
        in_channels=1,
        num_classes=10,
        width=16,
        depth=3,
        pool_size=2,
        dropout=0.0,
        embedding_dim=32,
    )
    with pytest.raises(DataFormatError, match="architecture"):
        load_resized(deeper, path)
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="bad.safetensors is corrupt or not a safetensors file"):
        load_resized(tiny(16), tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="saved model .*missing.safetensors does not exist"):
        load_resized(tiny(16), tmp_path / "missing.safetensors")
