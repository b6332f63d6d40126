"""Planning and optimal control with known dynamics (CS285 lecture 10)."""
from deeprl.planning.lqr import (
    LQRProblem,
    LQRSolution,
    NotPositiveDefiniteError,
    lqr_backward,
    lqr_cost,
    lqr_rollout,
    time_invariant_lqr,
)

__all__ = [
    "LQRProblem",
    "LQRSolution",
    "NotPositiveDefiniteError",
    "lqr_backward",
    "lqr_cost",
    "lqr_rollout",
    "time_invariant_lqr",
]
