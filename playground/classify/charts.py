"""The classifier's charts, each built once: the report saves them as PNG, the page draws them live."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playground.classify.metrics import per_class_accuracy
from playground.core.charts import Chart, Panel, Trace, confusion_chart, training_chart

if TYPE_CHECKING:
    from playground.classify.experiment import ClassifyResults


def per_class_chart(confusion, classes: list[str]) -> Chart:
    """Test accuracy of each class (the confusion matrix's diagonal over its row sums)."""
    accuracy = per_class_accuracy(confusion).tolist()
    bars = Trace("bar", "test accuracy", [str(c) for c in classes], accuracy, legend=False)
    panel = Panel(
        [bars], title="Accuracy per class", x_label="class", y_label="test accuracy", y_range=(0, 1)
    )
    return Chart("per_class_accuracy", [panel], columns=1)


def charts(results: ClassifyResults) -> list[Chart]:
    """Per-class accuracy, the confusion matrix and the training curves of one run."""
    return [
        per_class_chart(results.confusion, results.classes),
        confusion_chart(results.confusion.numpy(), results.classes),
        training_chart(results.step_loss, results.history.epochs),
    ]
