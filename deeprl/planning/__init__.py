"""Planning and optimal control with known dynamics (CS285 lecture 10)."""
from deeprl.planning.ilqr import ILQRResult, ilqr
from deeprl.planning.lqr import (
    LQRProblem,
    LQRSolution,
    NotPositiveDefiniteError,
    lqr_backward,
    lqr_cost,
    lqr_problem_of,
    lqr_rollout,
    time_invariant_lqr,
)
from deeprl.planning.mcts import MCTS, MCTSResult
from deeprl.planning.shooting import (
    CEM,
    MPPI,
    OptimizerInfo,
    RandomShooting,
    rollout_cost,
    trajectory_objective,
)

__all__ = [
    "ILQRResult",
    "ilqr",
    "CEM",
    "MCTS",
    "MCTSResult",
    "MPPI",
    "OptimizerInfo",
    "RandomShooting",
    "LQRProblem",
    "LQRSolution",
    "NotPositiveDefiniteError",
    "lqr_backward",
    "lqr_cost",
    "lqr_problem_of",
    "lqr_rollout",
    "rollout_cost",
    "time_invariant_lqr",
    "trajectory_objective",
]
