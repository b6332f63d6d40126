"""A linear-quadratic system as a Gymnasium environment (CS285 lecture 10's LQR setting).

State ``x (n,)``, control ``u (m,)``, ``T = horizon`` steps::

    x_{t+1} = A x_t + B u_t + w_t,            w_t ~ N(0, Sigma)   (Sigma = noise_std^2 I by default)
    r_t     = -(1/2 x_t^T Q x_t + 1/2 u_t^T R u_t)                  t = 0 .. T-1
    r_{T-1} also carries the terminal cost  -1/2 x_T^T Q_final x_T  (Q_final defaults to Q)

so the (undiscounted) return of an episode is exactly ``-J`` of
:func:`deeprl.planning.lqr.time_invariant_lqr` ``(A, B, Q, R, T, Q_final=Q_final,
Sigma=Sigma)`` (:func:`deeprl.planning.lqr.lqr_problem_of` builds it). The episode *terminates* after
``T`` steps: the horizon is part of the task, not a time limit. Observations are the full
state ``x`` (float64); actions are unbounded unless ``action_bound`` is given (then they are
clipped to ``[-action_bound, action_bound]`` before use and the cost is charged on the
clipped control). Starts: ``x_0 ~ U[-init_scale, init_scale]^n``.

Default system (``deeprl/LinearQuadratic-v0``): a double integrator (position, velocity;
force input) with ``dt = 0.1``, ``Q = I``, ``R = 0.1``, ``T = 100``, no noise.

``clone_state()`` / ``restore_state(s)`` copy and restore ``(x, t)`` and the noise RNG.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from deeprl.core.errors import ConfigError

LQ_ID = "deeprl/LinearQuadratic-v0"

_DT = 0.1
DOUBLE_INTEGRATOR = dict(A=[[1.0, _DT], [0.0, 1.0]], B=[[0.5 * _DT**2], [_DT]], Q=[[1.0, 0.0], [0.0, 1.0]],
                         R=[[0.1]])


def _matrix(name: str, value, shape: tuple) -> np.ndarray:
    try:
        a = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a numeric matrix, got {value!r}") from None
    if a.shape != shape:
        raise ConfigError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.isfinite(a).all():
        raise ConfigError(f"{name} contains NaN or inf")
    return a


def _check_sym(name: str, a: np.ndarray, definite: bool) -> np.ndarray:
    if not np.allclose(a, a.T, atol=1e-10):
        raise ConfigError(f"{name} must be symmetric")
    eig = np.linalg.eigvalsh(a)
    tol = 1e-12 * max(1.0, float(np.abs(eig).max()))
    if definite and eig.min() <= tol:
        raise ConfigError(f"{name} must be positive definite (smallest eigenvalue {eig.min():.3g})")
    if not definite and eig.min() < -tol:
        raise ConfigError(f"{name} must be positive semi-definite (smallest eigenvalue {eig.min():.3g})")
    return a


class LinearQuadraticEnv(gym.Env):
    """See the module docstring. ``noise_std`` (scalar) and ``noise_cov`` ``(n, n)`` are
    alternatives; ``noise_cov`` wins when both are given."""

    metadata = {"render_modes": []}

    def __init__(self, A=None, B=None, Q=None, R=None, Q_final=None, horizon: int = 100, noise_std: float = 0.0,
                 noise_cov=None, init_scale: float = 1.0, action_bound: float | None = None):
        d = DOUBLE_INTEGRATOR
        A = np.array(d["A"] if A is None else A, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] < 1:
            raise ConfigError(f"A must be a square (n, n) matrix, got shape {A.shape}")
        n = A.shape[0]
        self.A = _matrix("A", A, (n, n))
        B = np.array(d["B"] if B is None else B, dtype=np.float64)
        if B.ndim != 2 or B.shape[0] != n or B.shape[1] < 1:
            raise ConfigError(f"B must have shape (n, m) = ({n}, m), got {B.shape}")
        m = B.shape[1]
        self.B = _matrix("B", B, (n, m))
        self.Q = _check_sym("Q", _matrix("Q", d["Q"] if Q is None else Q, (n, n)), definite=False)
        self.R = _check_sym("R", _matrix("R", d["R"] if R is None else R, (m, m)), definite=True)
        self.Q_final = self.Q.copy() if Q_final is None else _check_sym("Q_final", _matrix("Q_final", Q_final, (n, n)),
                                                                        definite=False)
        if int(horizon) != horizon or horizon < 1:
            raise ConfigError(f"horizon must be an integer >= 1, got {horizon}")
        self.horizon = int(horizon)
        if noise_cov is not None:
            self.Sigma = _check_sym("noise_cov", _matrix("noise_cov", noise_cov, (n, n)), definite=False)
        else:
            if not (np.isfinite(noise_std) and noise_std >= 0):
                raise ConfigError(f"noise_std must be a finite number >= 0, got {noise_std}")
            self.Sigma = float(noise_std) ** 2 * np.eye(n)
        if not (np.isfinite(init_scale) and init_scale >= 0):
            raise ConfigError(f"init_scale must be a finite number >= 0, got {init_scale}")
        self.init_scale = float(init_scale)
        if action_bound is not None and not (np.isfinite(action_bound) and action_bound > 0):
            raise ConfigError(f"action_bound must be a finite number > 0 or None, got {action_bound}")
        self.action_bound = None if action_bound is None else float(action_bound)
        # Sigma = L L^T with an eigen-decomposition (PSD-safe, unlike Cholesky)
        eig, vec = np.linalg.eigh(self.Sigma)
        self._noise_root = vec * np.sqrt(np.clip(eig, 0.0, None))
        self.noisy = bool(np.any(self.Sigma != 0))
        bound = np.inf if action_bound is None else self.action_bound
        self.action_space = spaces.Box(-bound, bound, shape=(m,), dtype=np.float64)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float64)
        self.x = np.zeros(n)
        self.t = 0

    @property
    def n(self) -> int:
        return self.A.shape[0]

    @property
    def m(self) -> int:
        return self.B.shape[1]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-self.init_scale, self.init_scale, size=self.n)
        self.t = 0
        return self.x.copy(), {}

    def step(self, action):
        u = np.asarray(action, dtype=np.float64).reshape(self.m)
        if self.action_bound is not None:
            u = np.clip(u, -self.action_bound, self.action_bound)
        x = self.x
        cost = 0.5 * x @ self.Q @ x + 0.5 * u @ self.R @ u
        x_next = self.A @ x + self.B @ u
        if self.noisy:
            x_next = x_next + self._noise_root @ self.np_random.standard_normal(self.n)
        self.x, self.t = x_next, self.t + 1
        terminated = self.t >= self.horizon
        if terminated:
            cost += 0.5 * x_next @ self.Q_final @ x_next
        if not np.isfinite(cost):
            cost = np.inf  # diverged; the runner reports non-finite rewards
        return x_next.copy(), -float(cost), terminated, False, {}

    # -- clonable simulator API (see deeprl.envs.clonable) --------------------------------------
    def clone_state(self):
        return (self.x.copy(), self.t, self.np_random.bit_generator.state)

    def restore_state(self, state) -> None:
        x, t, rng = state
        self.x, self.t = np.array(x, dtype=np.float64), int(t)
        self.np_random.bit_generator.state = rng


def register_envs() -> None:
    """Register ``deeprl/LinearQuadratic-v0`` (the default double integrator); safe to call twice."""
    if LQ_ID not in gym.registry:
        gym.register(id=LQ_ID, entry_point="deeprl.envs.linear_quadratic:LinearQuadraticEnv")
