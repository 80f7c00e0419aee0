"""Datasets: Fashion-MNIST, scikit-learn digits, synthetic shapes, a user's image folders."""

from playground.data.base import ImageDataset, TensorLoader
from playground.data.catalog import DATASETS, dataset_status, load_dataset, load_train_val_test

__all__ = [
    "DATASETS",
    "ImageDataset",
    "TensorLoader",
    "dataset_status",
    "load_dataset",
    "load_train_val_test",
]
