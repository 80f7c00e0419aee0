"""Model uncertainty and OOD detection: deep ensembles, MC dropout, temperature scaling and a pyro
Bayesian network behind one interface (``fit``, ``predict`` -> probability samples), OOD scores,
feature-space scores, and detection / calibration metrics. The benchmark is ``experiment.py``."""
