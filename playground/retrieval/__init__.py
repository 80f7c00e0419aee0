"""Retrieval-augmented inference: a nearest-neighbour index over training embeddings and a fusion head."""
