"""Sampling-based trajectory optimisers: random shooting, CEM and MPPI (CS285 lecture 10).

All three solve the open-loop planning problem of the lecture,

    A* = argmin_A J(A),    A = (a_0, ..., a_{H-1}) of shape (H, m),

by only *evaluating* ``J`` on batches of candidate action sequences (no gradients), so they
work with any model, learned or known. The interface follows mbrl-lib's trajectory
optimisers: a planner is a small dataclass of hyperparameters with

    planner.optimize(objective, initial_guess) -> actions                      (H, m)

where ``objective`` maps a batch of candidates ``(N, H, m)`` to costs ``(N,)``.

Convention: **lower cost is better**. Pass ``maximize=True`` to a planner whose objective
returns rewards/returns instead; the planner then minimises ``-J`` internally and everything it
reports (``info.best_cost``, ``info.best_costs``, ...) is in the objective's own units (for
``maximize=True`` "best" means highest). NaN costs count as the worst possible value; if a
whole batch is NaN the planner raises :class:`~deeprl.core.errors.NonFiniteError`.

Bounds ``lower``/``upper`` are scalars or arrays that broadcast to ``(H, m)`` (e.g. ``(m,)``
per action dimension); every candidate the objective sees lies in ``[lower, upper]``.

- :class:`RandomShooting` -- ``A_i ~ U[lower, upper]`` i.i.d., return ``argmin_i J(A_i)``.
  For a smooth objective the best sample's distance to an interior minimiser ``A*`` in
  ``d = H*m`` dimensions shrinks like ``N^(-1/d)`` (the nearest of ``N`` uniform points):
  the curse of dimensionality the lecture warns about.
- :class:`CEM` -- cross-entropy method with a diagonal Gaussian ``N(mu, diag(sigma^2))``
  over ``(H, m)``. Each iteration samples ``N`` candidates clipped to the box, keeps the
  ``K`` elites with the lowest costs, and refits with smoothing ``alpha``::

      mu    <- alpha * mu    + (1 - alpha) * mean(elites)
      sigma <- alpha * sigma + (1 - alpha) * std(elites),   sigma >= min_std

  and returns the final ``mu`` (or the best sample ever seen, ``return_best=True``).
- :class:`MPPI` -- model-predictive path integral update (Williams et al. 2017; the form used
  by PDDM and mbrl-lib, without the control-cost term). Each iteration perturbs the mean,
  ``A_i = clip(mu + eps_i)``, ``eps_i ~ N(0, noise_std^2)``, and sets::

      w_i = exp(-(J_i - min_j J_j) / lambda) / sum_k exp(-(J_k - min_j J_j) / lambda)
      mu  <- alpha * mu + (1 - alpha) * sum_i w_i A_i

  Subtracting ``min J`` changes nothing mathematically and keeps the exponentials finite.
  Small ``lambda`` -> ``argmin`` of the batch; large ``lambda`` -> plain average.

Every call of ``optimize`` leaves an :class:`OptimizerInfo` in ``planner.info`` (best cost per
iteration, best-so-far curve, best sample ever seen) for tests and plots.

:func:`rollout_cost` / :func:`trajectory_objective` turn a batched dynamics function
``f(x (N, n), u (N, m)) -> x' (N, n)`` and a cost ``c(x, u) -> (N,)`` into such an objective,
so an MPC agent can plan with any model.

References: CS285 lecture 10; Rubinstein & Kroese 2004 (CEM); Williams et al. 2017,
"Information theoretic MPC for model-based reinforcement learning" (MPPI); Nagabandi et al.
2019 (PDDM); Pineda et al. 2021, "MBRL-Lib".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from deeprl.core.errors import ConfigError, NonFiniteError

__all__ = [
    "CEM",
    "MPPI",
    "OptimizerInfo",
    "RandomShooting",
    "rollout_cost",
    "trajectory_objective",
]

Objective = Callable[[np.ndarray], object]


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _to_numpy(value) -> np.ndarray:
    """float64 NumPy copy of an array-like, a NumPy array or a (CPU/GPU) torch tensor."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=np.float64)


def _check_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_float(name: str, value, *, positive: bool = False, low=None, high=None,
                 high_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    if positive and v <= 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")
    if low is not None and v < low:
        raise ConfigError(f"{name} must be >= {low}, got {value!r}")
    if high is not None and (v >= high if high_open else v > high):
        raise ConfigError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return v


def _check_bounds(lower, upper, required: bool):
    """Validate ``lower < upper`` (both or neither given); returns float64 arrays or Nones."""
    if lower is None and upper is None:
        if required:
            raise ConfigError("lower and upper bounds are required (the box to sample from)")
        return None, None
    if lower is None or upper is None:
        raise ConfigError("give both lower and upper bounds, or neither")
    lo, hi = _to_numpy(lower), _to_numpy(upper)
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise ConfigError("lower and upper must not contain NaN")
    try:
        ok = np.broadcast_arrays(lo, hi)
    except ValueError:
        raise ConfigError(f"lower shape {lo.shape} and upper shape {hi.shape} do not broadcast") from None
    if not (ok[0] < ok[1]).all():
        raise ConfigError("lower must be < upper elementwise")
    if required and not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ConfigError("lower and upper must be finite for uniform sampling")
    return lo, hi


def _broadcast_bound(name: str, bound, shape: tuple) -> np.ndarray:
    try:
        return np.broadcast_to(bound, shape).astype(np.float64)
    except ValueError:
        raise ValueError(f"{name} has shape {bound.shape}, which does not broadcast to initial_guess's "
                         f"(H, m) = {shape}") from None


def _initial_guess(initial_guess) -> np.ndarray:
    guess = _to_numpy(initial_guess)
    if guess.ndim != 2 or guess.shape[0] < 1 or guess.shape[1] < 1:
        raise ValueError(f"initial_guess must have shape (H, m) with H, m >= 1, got {guess.shape}")
    if not np.isfinite(guess).all():
        raise ValueError("initial_guess contains NaN or inf")
    return guess


def _evaluate(objective: Objective, samples: np.ndarray, sign: float) -> np.ndarray:
    """Costs to *minimise*, ``sign * J``, shape ``(N,)``; NaN -> +inf; all NaN -> error."""
    costs = _to_numpy(objective(samples.copy()))
    n = samples.shape[0]
    if costs.shape not in ((n,), (n, 1)):
        raise ValueError(f"objective must return costs of shape (N,) = ({n},), got {costs.shape}")
    costs = sign * costs.reshape(n)
    costs[np.isnan(costs)] = np.inf
    if np.isposinf(costs).all():
        raise NonFiniteError("objective returned NaN or +inf cost for every candidate")
    return costs


def _make_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise ConfigError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


@dataclass(frozen=True, eq=False)
class OptimizerInfo:
    """What one ``optimize`` call did, in the objective's own units (see ``maximize``).

    ``best_costs (I,)``: best cost within each iteration's batch; ``mean_costs (I,)``: the
    batch's mean over finite costs; ``best_so_far (I,)``: running best of ``best_costs``
    (monotone); ``best_actions (H, m)`` / ``best_cost``: the best candidate ever evaluated;
    ``num_evaluations``: total candidates passed to the objective.
    """

    best_costs: np.ndarray
    mean_costs: np.ndarray
    best_so_far: np.ndarray
    best_actions: np.ndarray
    best_cost: float
    num_evaluations: int


class _Tracker:
    """Accumulates per-iteration statistics of costs that are being minimised."""

    def __init__(self, sign: float):
        self.sign, self.best, self.means = sign, [], []
        self.best_cost, self.best_actions, self.evals = np.inf, None, 0

    def update(self, samples: np.ndarray, costs: np.ndarray) -> None:
        i = int(np.argmin(costs))
        finite = costs[np.isfinite(costs)]
        self.best.append(costs[i])
        self.means.append(finite.mean() if finite.size else np.inf)
        self.evals += samples.shape[0]
        if costs[i] < self.best_cost or self.best_actions is None:
            self.best_cost, self.best_actions = costs[i], samples[i].copy()

    def info(self) -> OptimizerInfo:
        best = np.array(self.best)
        return OptimizerInfo(
            best_costs=self.sign * best,
            mean_costs=self.sign * np.array(self.means),
            best_so_far=self.sign * np.minimum.accumulate(best),
            best_actions=self.best_actions,
            best_cost=float(self.sign * self.best_cost),
            num_evaluations=self.evals,
        )


# --------------------------------------------------------------------------------------
# Planners
# --------------------------------------------------------------------------------------


@dataclass(eq=False)
class RandomShooting:
    """Best of ``num_samples`` uniform samples in the box ``[lower, upper]`` (one iteration).

    ``initial_guess`` only fixes the shape ``(H, m)``; its values are not used. ``rng``: a
    ``np.random.Generator``, an int seed or ``None``.
    """

    num_samples: int
    lower: object
    upper: object
    rng: object = None
    maximize: bool = False
    info: OptimizerInfo | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.num_samples = _check_int("num_samples", self.num_samples)
        self.lower, self.upper = _check_bounds(self.lower, self.upper, required=True)
        self.rng = _make_rng(self.rng)

    def optimize(self, objective: Objective, initial_guess) -> np.ndarray:
        """Return the sampled ``(H, m)`` sequence with the lowest cost."""
        shape = _initial_guess(initial_guess).shape
        lo, hi = _broadcast_bound("lower", self.lower, shape), _broadcast_bound("upper", self.upper, shape)
        sign = -1.0 if self.maximize else 1.0
        samples = self.rng.uniform(lo, hi, size=(self.num_samples, *shape))
        costs = _evaluate(objective, samples, sign)
        tracker = _Tracker(sign)
        tracker.update(samples, costs)
        self.info = tracker.info()
        return self.info.best_actions.copy()


@dataclass(eq=False)
class CEM:
    """Cross-entropy method with a diagonal Gaussian over ``(H, m)`` (see the module docstring).

    ``num_elites <= num_samples``; ``0 <= alpha < 1`` smooths the mean/std refits
    (``alpha = 0``: plain refit). ``init_std``: scalar or broadcastable to ``(H, m)``;
    ``None`` means ``(upper - lower) / 4`` (mbrl-lib's default), which needs finite bounds.
    ``min_std >= 0`` floors the std to avoid premature collapse. Samples are clipped to the
    bounds, so the elite mean (a convex combination of elites) and the returned mean always
    lie in the box. Bounds are optional (``None``: unbounded). Returns the final mean, or the
    best sample ever evaluated if ``return_best=True`` (it is in ``info.best_actions`` anyway).
    """

    num_samples: int
    num_elites: int
    num_iterations: int
    lower: object = None
    upper: object = None
    alpha: float = 0.1
    init_std: object = None
    min_std: float = 0.0
    rng: object = None
    maximize: bool = False
    return_best: bool = False
    info: OptimizerInfo | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.num_samples = _check_int("num_samples", self.num_samples, low=2)
        self.num_elites = _check_int("num_elites", self.num_elites)
        if self.num_elites > self.num_samples:
            raise ConfigError(f"num_elites must be <= num_samples = {self.num_samples}, got {self.num_elites}")
        self.num_iterations = _check_int("num_iterations", self.num_iterations)
        self.lower, self.upper = _check_bounds(self.lower, self.upper, required=False)
        self.alpha = _check_float("alpha", self.alpha, low=0.0, high=1.0, high_open=True)
        self.min_std = _check_float("min_std", self.min_std, low=0.0)
        if self.init_std is None:
            if self.lower is None or not (np.isfinite(self.lower).all() and np.isfinite(self.upper).all()):
                raise ConfigError("init_std is required when the bounds are not finite")
        else:
            std = _to_numpy(self.init_std)
            if not (np.isfinite(std).all() and (std > 0).all()):
                raise ConfigError(f"init_std must be finite and > 0, got {self.init_std!r}")
            self.init_std = std
        self.rng = _make_rng(self.rng)

    def optimize(self, objective: Objective, initial_guess) -> np.ndarray:
        """Refit the sampling distribution ``num_iterations`` times; return its mean ``(H, m)``."""
        mean = _initial_guess(initial_guess)
        shape = mean.shape
        if self.lower is None:
            lo, hi = np.full(shape, -np.inf), np.full(shape, np.inf)
        else:
            lo, hi = _broadcast_bound("lower", self.lower, shape), _broadcast_bound("upper", self.upper, shape)
        mean = np.clip(mean, lo, hi)
        std = (hi - lo) / 4.0 if self.init_std is None else _broadcast_bound("init_std", self.init_std, shape)
        std = np.maximum(std, self.min_std)
        sign = -1.0 if self.maximize else 1.0
        tracker = _Tracker(sign)
        for _ in range(self.num_iterations):
            eps = self.rng.standard_normal((self.num_samples, *shape))
            samples = np.clip(mean + std * eps, lo, hi)
            costs = _evaluate(objective, samples, sign)
            tracker.update(samples, costs)
            elites = samples[np.argsort(costs, kind="stable")[: self.num_elites]]
            mean = self.alpha * mean + (1.0 - self.alpha) * elites.mean(axis=0)
            std = self.alpha * std + (1.0 - self.alpha) * elites.std(axis=0)
            std = np.maximum(std, self.min_std)
        self.info = tracker.info()
        return self.info.best_actions.copy() if self.return_best else mean


@dataclass(eq=False)
class MPPI:
    """Model-predictive path integral optimiser (see the module docstring).

    ``temperature`` (lambda) ``> 0``; ``noise_std > 0``: scalar or broadcastable to
    ``(H, m)``; ``0 <= alpha < 1`` smooths the mean update (``alpha = 0``: none, as in
    MPPI). Bounds are optional; perturbed samples are clipped to them, so the weighted mean
    stays in the box. Returns the final mean ``(H, m)`` (or the best sample ever evaluated if
    ``return_best=True``).
    """

    num_samples: int
    num_iterations: int
    temperature: float
    noise_std: object
    lower: object = None
    upper: object = None
    alpha: float = 0.0
    rng: object = None
    maximize: bool = False
    return_best: bool = False
    info: OptimizerInfo | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.num_samples = _check_int("num_samples", self.num_samples)
        self.num_iterations = _check_int("num_iterations", self.num_iterations)
        self.temperature = _check_float("temperature", self.temperature, positive=True)
        std = _to_numpy(self.noise_std)
        if not (np.isfinite(std).all() and (std > 0).all()):
            raise ConfigError(f"noise_std must be finite and > 0, got {self.noise_std!r}")
        self.noise_std = std
        self.lower, self.upper = _check_bounds(self.lower, self.upper, required=False)
        self.alpha = _check_float("alpha", self.alpha, low=0.0, high=1.0, high_open=True)
        self.rng = _make_rng(self.rng)

    def optimize(self, objective: Objective, initial_guess) -> np.ndarray:
        """Run ``num_iterations`` weighted-average updates from ``initial_guess``; return the mean."""
        mean = _initial_guess(initial_guess)
        shape = mean.shape
        if self.lower is None:
            lo, hi = np.full(shape, -np.inf), np.full(shape, np.inf)
        else:
            lo, hi = _broadcast_bound("lower", self.lower, shape), _broadcast_bound("upper", self.upper, shape)
        mean = np.clip(mean, lo, hi)
        std = _broadcast_bound("noise_std", self.noise_std, shape)
        sign = -1.0 if self.maximize else 1.0
        tracker = _Tracker(sign)
        for _ in range(self.num_iterations):
            eps = self.rng.standard_normal((self.num_samples, *shape))
            samples = np.clip(mean + std * eps, lo, hi)
            costs = _evaluate(objective, samples, sign)
            tracker.update(samples, costs)
            w = np.exp(-(costs - costs.min()) / self.temperature)  # +inf cost -> weight 0
            w /= w.sum()
            mean = self.alpha * mean + (1.0 - self.alpha) * np.tensordot(w, samples, axes=1)
        self.info = tracker.info()
        return self.info.best_actions.copy() if self.return_best else mean


# --------------------------------------------------------------------------------------
# Objectives from dynamics
# --------------------------------------------------------------------------------------


def rollout_cost(dynamics: Callable, cost: Callable, x0, actions,
                 terminal_cost: Callable | None = None) -> np.ndarray:
    """Total cost of each action sequence under deterministic batched dynamics.

    ``x0``: ``(n,)`` (shared start) or ``(N, n)``; ``actions``: ``(N, H, m)`` (or ``(H, m)``
    for a single sequence, giving shape ``(1,)``). ``dynamics(x (N, n), u (N, m)) -> (N, n)``,
    ``cost(x (N, n), u (N, m)) -> (N,)``, optional ``terminal_cost(x (N, n)) -> (N,)``::

        x_{t+1} = f(x_t, u_t),   J = sum_{t=0}^{H-1} c(x_t, u_t) + c_T(x_H)        (N,)
    """
    acts = _to_numpy(actions)
    if acts.ndim == 2:
        acts = acts[None]
    if acts.ndim != 3:
        raise ValueError(f"actions must have shape (N, H, m) or (H, m), got {acts.shape}")
    n_seq, horizon = acts.shape[:2]
    x = _to_numpy(x0)
    if x.ndim == 1:
        x = np.broadcast_to(x, (n_seq, x.shape[0])).copy()
    if x.ndim != 2 or x.shape[0] != n_seq:
        raise ValueError(f"x0 must have shape (n,) or (N, n) = ({n_seq}, n), got {x.shape}")
    total = np.zeros(n_seq)
    for t in range(horizon):
        u = acts[:, t]
        total += _to_numpy(cost(x, u)).reshape(n_seq)
        x = _to_numpy(dynamics(x, u))
    if terminal_cost is not None:
        total += _to_numpy(terminal_cost(x)).reshape(n_seq)
    return total


def trajectory_objective(dynamics: Callable, cost: Callable, x0,
                         terminal_cost: Callable | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """``objective(actions (N, H, m)) -> (N,)`` = :func:`rollout_cost` from ``x0``, for ``optimize``."""
    x0 = _to_numpy(x0)

    def objective(actions: np.ndarray) -> np.ndarray:
        return rollout_cost(dynamics, cost, x0, actions, terminal_cost)

    return objective
