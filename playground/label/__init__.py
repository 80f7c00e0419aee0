"""Labelling projects on a user's own images: the pool, rounds that score and route it, people's
labels with consensus, and the model retrained from them."""
