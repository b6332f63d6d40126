"""Learned models of environments (CS285 lectures 11-12): dynamics ensembles, fitting them to
transitions, and the learned model behind the planners' ``ModelEnv`` protocol."""
