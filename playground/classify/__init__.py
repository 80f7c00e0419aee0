"""Supervised image classification: the baseline every other technique is measured against."""
