import io

import pytest
import torch
from torch import nn

from playground.core.device import autocast, choose_device, parse_dtype, seed_everything
from playground.core.progress import ProgressEvent, TqdmProgress
from playground.core.training import evaluate, fit, predict
from playground.data import TensorLoader
from playground.errors import ConfigError, TrainingDivergedError
from playground.models import build_model


def blobs(n=256, seed=0):
    """Two well-separated Gaussian blobs in 2-D: any working loop learns them."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=g) + (y.float() * 4 - 2).unsqueeze(1)
    return x, y


def test_fit_learns_a_separable_problem_and_reports_progress():
    torch.manual_seed(0)
    x, y = blobs()
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    events: list[ProgressEvent] = []
    history = fit(
        model,
        TensorLoader(x, y, batch_size=32, shuffle=True),
        epochs=3,
        lr=0.05,
        val_loader=TensorLoader(*blobs(128, 1), batch_size=64),
        progress=events.append,
    )
    assert len(history.epochs) == 3
    assert history.last["val/accuracy"] >= 0.97
    assert history.series("train/loss")[-1] < history.series("train/loss")[0]
    train_events = [e for e in events if e.stage == "train"]
    assert len(train_events) == 3 * 8 and train_events[-1].fraction == 1.0
    assert {e.epoch for e in train_events} == {1, 2, 3}
    assert any(e.stage == "evaluate" for e in events)


def test_fit_is_repeatable_with_a_seed():
    def train():
        seed_everything(7)
        x, y = blobs()
        model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
        fit(model, TensorLoader(x, y, batch_size=16, shuffle=True, seed=7), epochs=1, lr=0.01)
        return torch.cat([p.flatten() for p in model.parameters()])

    assert torch.equal(train(), train())


def test_fit_trains_a_model_that_returns_embedding_and_logits():
    torch.manual_seed(0)
    images = torch.rand(64, 1, 8, 8)
    labels = (images.mean((1, 2, 3)) > images.mean()).long()
    model = build_model(
        "small_cnn", in_channels=1, num_classes=2, embedding_dim=8, width=8, depth=1, dropout=0.0
    )
    fit(model, TensorLoader(images, labels, batch_size=16, shuffle=True), epochs=15, lr=0.01)
    assert evaluate(model, TensorLoader(images, labels, batch_size=64))["accuracy"] >= 0.9
    outputs = predict(model, TensorLoader(images, labels, batch_size=20))
    assert outputs["logits"].shape == (64, 2) and outputs["embedding"].shape == (64, 8)
    assert torch.equal(outputs["target"], labels)


def test_fit_stops_on_a_diverging_loss():
    x, y = blobs(64)
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="lower the learning rate"):
        fit(model, TensorLoader(x, y, batch_size=32), epochs=1)


def test_tensor_loader_batches_cover_every_item_once():
    x = torch.arange(10)
    loader = TensorLoader(x, x * 2, batch_size=4, shuffle=True, seed=0)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    seen = torch.cat([b[0] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert all(torch.equal(b[1], b[0] * 2) for b in batches)
    assert not torch.equal(seen, torch.cat([b[0] for b in loader]))  # reshuffled every epoch
    assert len(TensorLoader(x, batch_size=4, drop_last=True)) == 2


def test_device_and_dtype_choice(monkeypatch):
    assert choose_device("cpu").type == "cpu"
    monkeypatch.setenv("PLAYGROUND_DEVICE", "cpu")
    assert choose_device().type == "cpu"
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            choose_device("cuda")
    assert parse_dtype("bf16") is torch.bfloat16
    with pytest.raises(ConfigError, match="unknown dtype"):
        parse_dtype("fp8")
    with autocast(torch.device("cpu"), "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype is torch.bfloat16


def test_tqdm_progress_keeps_one_bar_per_stage_and_closes_finished_ones():
    bars = TqdmProgress(file=io.StringIO())
    bars(ProgressEvent("train", 1, 3, epoch=1, metrics={"loss": 1.0}))
    bars(ProgressEvent("predict", 1, 0))
    assert set(bars._bars) == {"train", "predict"} and bars._bars["train"].n == 1
    bars(ProgressEvent("train", 3, 3, epoch=1))
    assert set(bars._bars) == {"predict"}  # a finished stage's bar is closed
    bars(ProgressEvent("train", 1, 3, epoch=2))
    assert bars._bars["train"].n == 1  # the next epoch starts a fresh bar
    bars.close()
    assert not bars._bars


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_runs_on_cuda_in_fp16():
    x, y = blobs()
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    history = fit(model, TensorLoader(x, y, batch_size=32), epochs=3, lr=0.05, device="cuda", dtype="fp16")
    assert history.last["train/accuracy"] >= 0.95
