import numpy as np
import pytest
import torch

from playground.active.feedback import annotated_dataset
from playground.errors import DataNotFoundError
from playground.store import QueueItem, Store


def test_accepted_and_corrected_items_become_training_data():
    store = Store()
    images = [np.full((6, 6), i / 10, dtype=np.float32) for i in range(4)]
    store.enqueue(
        "q",
        [
            QueueItem(
                f"s{i}", images[i], [0.7, 0.2, 0.1], uncertainty=1.0 - i / 10, class_names=["a", "b", "c"]
            )
            for i in range(4)
        ],
    )
    with pytest.raises(DataNotFoundError):
        annotated_dataset(store, "q")
    decided = {}
    for action, label in (("accept", None), ("correct", 2), ("ood", None), ("correct", 1)):
        item = store.lease_next("q", "ann")
        store.submit(f"r-{item.external_id}", item.escalation_id, "ann", action, label)
        decided[item.external_id] = (action, label)
    store.undo_last("q", "ann")  # the last correction no longer counts
    data = annotated_dataset(store, "q")
    kept = [e for e, (action, _) in list(decided.items())[:3] if action != "ood"]
    assert len(data) == 2 and data.classes == ["a", "b", "c"]
    assert data.labels.tolist() == [0, 2]  # accept takes the model's label (class 0)
    first = int(kept[0].removeprefix("s"))
    assert data.images.shape == (2, 1, 6, 6)
    assert torch.allclose(data.images[0], torch.full((1, 6, 6), first / 10))
