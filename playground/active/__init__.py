"""Active learning: acquisition functions, the labelling loop, and escalation to annotators."""
