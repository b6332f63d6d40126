"""Known-dynamics toolbox: finite MDPs as NumPy arrays and exact dynamic programming."""
from deeprl.tabular.dp import (
    boltzmann_policy,
    deterministic_policy,
    greedy_policy,
    policy_evaluation,
    policy_evaluation_exact,
    policy_iteration,
    q_from_v,
    soft_max,
    soft_value_iteration,
    value_iteration,
)
from deeprl.tabular.mdp import TabularMDP, from_gym

__all__ = [
    "TabularMDP",
    "boltzmann_policy",
    "deterministic_policy",
    "from_gym",
    "greedy_policy",
    "policy_evaluation",
    "policy_evaluation_exact",
    "policy_iteration",
    "q_from_v",
    "soft_max",
    "soft_value_iteration",
    "value_iteration",
]
