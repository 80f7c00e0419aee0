"""Knowledge distillation (Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", 2015).

A small student learns from the labels and from a trained teacher's softened outputs:

    L = alpha * CE(z_s, y) + (1 - alpha) * tau^2 * KL( softmax(z_t / tau) || softmax(z_s / tau) )

The tau^2 factor keeps the soft term's gradients on the scale of the hard term's as tau grows
(the soft gradients shrink as 1/tau^2). Training goes through the project's one loop
(:func:`playground.core.training.fit`): :class:`Distiller` wraps student and frozen teacher so
that one forward gives both logits, and :class:`KDLoss` is the ``loss_fn``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from playground.core.training import logits_of
from playground.errors import ConfigError, DataFormatError


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.5,
    temperature: float = 4.0,
) -> torch.Tensor:
    """Hinton et al.'s loss, averaged over the batch (KL in ``batchmean`` form)."""
    if not 0.0 <= alpha <= 1.0 or temperature <= 0:
        raise ConfigError(
            f"KD needs 0 <= alpha <= 1 and a positive temperature, got {alpha} and {temperature}"
        )
    if student_logits.shape != teacher_logits.shape:
        raise DataFormatError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ: they must share the classes"
        )
    hard = F.cross_entropy(student_logits, targets)
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    soft = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
    return alpha * hard + (1 - alpha) * temperature**2 * soft


class KDOutput(NamedTuple):
    """The student's ``logits`` (what accuracy is measured on) and the teacher's."""

    logits: torch.Tensor
    teacher_logits: torch.Tensor


class Distiller(nn.Module):
    """Student plus a frozen teacher in eval mode: ``forward(images) -> KDOutput``.

    Only the student's parameters train (``parameters()`` still lists the teacher's, with
    ``requires_grad`` off, so give the optimizer ``distiller.student.parameters()``).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module) -> None:
        super().__init__()
        self.student, self.teacher = student, teacher.eval()
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> Distiller:
        self.student.train(mode)
        self.teacher.eval()  # batch-norm statistics and dropout of the teacher stay fixed
        self.training = mode
        return self

    def forward(self, images: torch.Tensor) -> KDOutput:
        with torch.no_grad():
            teacher = logits_of(self.teacher(images))
        return KDOutput(logits_of(self.student(images)), teacher)


class KDLoss:
    """``loss_fn(output, target)`` for :func:`fit` on a :class:`Distiller`."""

    def __init__(self, alpha: float = 0.5, temperature: float = 4.0) -> None:
        kd_loss(
            torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), alpha, temperature
        )  # checks
        self.alpha, self.temperature = alpha, temperature

    def __call__(self, output: KDOutput, target: torch.Tensor) -> torch.Tensor:
        return kd_loss(output.logits, output.teacher_logits, target, self.alpha, self.temperature)
