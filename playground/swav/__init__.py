"""Self-supervised learning: SwAV (Sinkhorn-Knopp codes, prototypes, multi-crop), the
SimCLR-style contrastive loss and batch augmentations.

Used by :mod:`playground.fct` to learn side-information without labels.
"""
