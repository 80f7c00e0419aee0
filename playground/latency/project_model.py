"""The project's own benchmark CNN for the latency benchmark: trained here (or loaded from an earlier run
with ``models_from``), plus the copies only a model trained here can have: pruned to a MAC target and
fine-tuned (by KD from the unpruned model for ``pruned50_kd``), and a small student trained from scratch and
by knowledge distillation (Hinton et al. 2015). A team's own model skips all of this
(:mod:`playground.latency.own_model`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from playground.core.experiment import Run
from playground.core.progress import Progress, staged
from playground.core.training import fit, make_optimizer
from playground.data import ImageDataset, TensorLoader
from playground.data.splits import limit_per_split
from playground.latency.distill import Distiller, KDLoss
from playground.latency.evaluation import EvalSet
from playground.latency.own_model import OwnModel
from playground.latency.pruning import prune_to_target
from playground.latency.saved_models import MODELS_FOLDER, load_resized, save_models
from playground.latency.sources import ModelSource, Preprocess
from playground.latency.variants import OTHER_MODELS

if TYPE_CHECKING:
    from playground.latency.experiment import Config

TEACHER = "benchmark_cnn"  # the trained model every precision variant is built from (and the KD teacher)


def train(
    model,
    data: ImageDataset,
    config: Config,
    device,
    progress: Progress,
    epochs: int | None = None,
    loss_fn=None,
    parameters=None,
) -> torch.nn.Module:
    loader = TensorLoader.of(
        data,
        batch_size=config.batch_size,
        shuffle=True,
        seed=config.seed,
        drop_last=len(data) > config.batch_size,
    )
    optimizer = make_optimizer(parameters if parameters is not None else model, "adamw", config.lr, 1e-4)
    kwargs = {"loss_fn": loss_fn} if loss_fn else {}
    fit(
        model,
        loader,
        epochs=epochs or config.epochs,
        optimizer=optimizer,
        device=device,
        progress=progress,
        **kwargs,
    )
    return model.cpu().eval()


def train_models(config: Config, train_set: ImageDataset, device, progress: Progress) -> tuple:
    """The benchmark CNN, then (as the variants ask) the pruned copies and the two students;
    with ``models_from``, the saved ones are loaded instead of trained."""
    shape, classes = train_set.image_shape, train_set.num_classes
    saved = load_saved_models(config, shape[0], classes)
    torch.manual_seed(config.seed)
    model = saved.pop(TEACHER, None)
    if model is None:
        model = train(
            config.project_model(shape[0], classes),
            train_set,
            config,
            device,
            staged(progress, "benchmark CNN"),
        )
    others = dict(saved)
    for name, kd in (("pruned50", False), ("pruned50_kd", True)):
        if name in config.methods and name not in others:
            others[name] = prune(config, model, train_set, device, staged(progress, name), kd)
    if {"student_scratch", "student_kd"} & set(config.methods) - set(others):
        others.update(train_students(config, model, train_set, device, progress))
    return model, {k: v for k, v in others.items() if k in config.methods}


def train_students(config: Config, teacher, train_set: ImageDataset, device, progress: Progress) -> dict:
    """The same initial student trained from scratch and by KD, on the transfer set (``student_train_limit``
    images of ``train_set``: Hinton et al.'s soft targets matter most when the student sees few images)."""
    transfer = limit_per_split(train_set, config.student_train_limit, config.seed)
    epochs = config.student_epochs or config.epochs
    torch.manual_seed(config.seed + 1)
    initial = config.project_model(train_set.image_shape[0], train_set.num_classes, config.student_width)
    scratch = train(
        copy.deepcopy(initial), transfer, config, device, staged(progress, "student (scratch)"), epochs
    )
    kd = distill(
        config, copy.deepcopy(initial), teacher, transfer, device, staged(progress, "student (KD)"), epochs
    )
    return {"student_scratch": scratch, "student_kd": kd}


def distill(
    config: Config,
    student,
    teacher,
    train_set: ImageDataset,
    device,
    progress: Progress,
    epochs: int | None = None,
) -> torch.nn.Module:
    distiller = Distiller(student, teacher)
    train(
        distiller,
        train_set,
        config,
        device,
        progress,
        epochs=epochs,
        loss_fn=KDLoss(config.kd_alpha, config.kd_temperature),
        parameters=distiller.student,
    )
    return distiller.student.eval()


def prune(
    config: Config, model, train_set: ImageDataset, device, progress: Progress, kd: bool = False
) -> torch.nn.Module:
    """Prune a copy of ``model`` to the MAC target; fine-tune after every round, by KD from the
    unpruned model when ``kd`` (the recovery path) or on the labels alone."""
    pruned = copy.deepcopy(model).eval()
    batches = [(train_set.images[i : i + 128], train_set.labels[i : i + 128]) for i in range(0, 512, 128)]

    def finetune(m, round_):
        stage = staged(progress, f"round {round_}")
        if kd:
            distill(config, m, model, train_set, device, stage, epochs=config.prune.finetune_epochs)
        else:
            train(m, train_set, config, device, stage, epochs=config.prune.finetune_epochs)

    prune_to_target(pruned, train_set.images[:1], config.prune, gradient_batches=batches, finetune=finetune)
    return pruned.eval()


def load_saved_models(config: Config, in_channels: int, classes: int) -> dict:
    """The models saved by the run ``models_from`` (all of them, or the benchmark CNN only)."""
    if not config.models_from:
        return {}
    folder = Path(config.models_from).expanduser() / MODELS_FOLDER
    names = [TEACHER] + ([n for n in OTHER_MODELS if n in config.methods] if config.reuse == "all" else [])
    loaded = {}
    for name in names:
        path = folder / f"{name}.safetensors"
        if name == TEACHER or path.is_file():
            width = config.student_width if name.startswith("student") else config.width
            loaded[name] = load_resized(config.project_model(in_channels, classes, width), path)
    return loaded


def project_source(model: torch.nn.Module, train_set: ImageDataset) -> ModelSource:
    """The project's CNN as a :class:`ModelSource` (its images are pixels in [0, 1], not normalised)."""
    channels, height, _ = train_set.image_shape
    unit = Preprocess(height, height, (0.0,) * channels, (1.0,) * channels, "bilinear")
    shape = tuple(train_set.image_shape)
    return ModelSource(f"project:{TEACHER}", model, None, shape, train_set.num_classes, "trained here", unit)


def project_models(run: Run[Config], data) -> tuple[OwnModel, dict]:
    """The project's CNN (trained, or loaded from ``models_from``) as an :class:`OwnModel`, and the
    pruned copies and students the variants ask for."""
    config = run.config
    train_set, test, corrupted, far = data
    model, others = train_models(config, train_set, run.device, run.progress)
    if run.save_models:  # RUN/models/<name>.safetensors: re-time the same weights later (models_from)
        save_models(run.dir.path / MODELS_FOLDER, {TEACHER: model, **others})
    calibration = train_set.images[: config.calibration_images]
    evaluation = EvalSet(test.images, test.labels, corrupted.images, far, calibration)
    evaluation.description = (
        f"quality on {len(test)} test images, int8 calibrated on {calibration.shape[0]} training images, "
        f"far OOD {far.shape[0]} {config.far_ood} images"
    )
    line = f"Benchmark CNN: small CNN width {config.width}, depth {config.depth}, {config.epochs} epochs."
    return OwnModel(project_source(model, train_set), evaluation, [line]), others
