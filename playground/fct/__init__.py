"""Forward compatible training (Ramanujan et al., CVPR 2022) and its baselines.

Pieces: :mod:`~playground.fct.side_info` (label-free side-information, a plug-in),
:mod:`~playground.fct.transformation` (h(old, side) -> new), :mod:`~playground.fct.bct`
(backward compatible training, the baseline), :mod:`~playground.fct.retrieval` (CMC top-k
and mAP), :mod:`~playground.fct.gallery` (sharded gallery store and the two backfill
routes), :mod:`~playground.fct.adapters` (post-hoc maps between two spaces, Drift-Adapter),
:mod:`~playground.fct.backfill_order` (partial backfill in an uncertainty order, FastFill),
:mod:`~playground.fct.upgrade` (every upgrade policy side by side) and
:mod:`~playground.fct.experiment` which wires them into one run.
"""
