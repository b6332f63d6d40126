"""Tabular agents (finite state and action spaces; NumPy tables, no networks): dynamic
programming with the environment's known model, model-free TD and Monte Carlo control, and
multi-armed bandits. The algorithms themselves live in :mod:`deeprl.tabular`; the registry of
names is ``deeprl.algos.FAMILIES["tabular"]``."""
