"""Sweeps over any recipe: a grid or samples, seeds, local processes or Ray.

:mod:`.space` (trials), :mod:`.runner` (running them), :mod:`.sweep` (the driver and its outputs),
:mod:`.cli` (``playground sweep``). Nothing is imported here, so ``playground --help`` stays fast.
"""
