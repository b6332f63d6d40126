"""Finite-horizon linear-quadratic regulator (LQR) with known, time-varying dynamics.

Notation follows CS285's optimal-control lecture (time ``t = 0 .. T-1``, ``z_t = [x_t; u_t]``,
state size ``n``, control size ``m``):

- dynamics  ``x_{t+1} = F_t z_t + f_t (+ w_t)``, ``w_t ~ N(0, Sigma)`` when ``Sigma`` is given;
  ``F_t = [F_x  F_u]`` is ``(n, n+m)``, ``f_t`` is ``(n,)``;
- cost      ``c(x_t, u_t) = 1/2 z_t^T C_t z_t + z_t^T c_t``, ``C_t`` is ``(n+m, n+m)``, ``c_t`` is ``(n+m,)``;
- terminal  ``c_T(x_T) = 1/2 x_T^T C_final x_T + x_T^T c_final`` (zero when not given);
- objective ``J = sum_{t<T} c(x_t, u_t) + c_T(x_T)``, expected over ``w`` when noisy.

Backward recursion (``V_T = C_final``, ``v_T = c_final``, ``const_T = 0``)::

    Q_t = C_t + F_t^T V_{t+1} F_t                                    (n+m, n+m)
    q_t = c_t + F_t^T V_{t+1} f_t + F_t^T v_{t+1}                    (n+m,)
    K_t = -Q_uu^{-1} Q_ux,   k_t = -Q_uu^{-1} q_u                    u_t = K_t x_t + k_t
    V_t = Q_xx + Q_xu K_t + K_t^T Q_ux + K_t^T Q_uu K_t              (n, n)
    v_t = q_x + Q_xu k_t + K_t^T q_u + K_t^T Q_uu k_t                (n,)
    const_t = const_{t+1} + 1/2 f_t^T V_{t+1} f_t + f_t^T v_{t+1} + 1/2 tr(V_{t+1} Sigma)
              + 1/2 k_t^T Q_uu k_t + k_t^T q_u

so that the optimal cost-to-go is ``V_t(x) = 1/2 x^T V_t x + x^T v_t + const_t``. (The lecture
notes print the gains without the minus sign; the signs above are the correct ones.) Gaussian
noise only adds the ``1/2 tr(V_{t+1} Sigma)`` terms to ``const``: the gains are those of the
deterministic problem (certainty equivalence).

``V_t`` and ``v_t`` are written in the "policy evaluation" form above rather than the shorter
``V_t = Q_xx - Q_xu Q_uu^{-1} Q_ux``: with ``reg = 0`` they are identical, and with ``reg > 0``
(Levenberg-Marquardt: gains computed from ``Q_uu + reg I``) ``V, v, const`` are still the exact
expected cost-to-go of the returned (no longer optimal) controller ``u_t = K_t x_t + k_t``.

Only the symmetric parts of ``C_t``, ``C_final`` and ``Sigma`` matter; they are symmetrised.

Reference: CS285 lecture 10 (optimal control and planning); Tassa, Erez & Todorov 2012,
"Synthesis and stabilization of complex behaviors through online trajectory optimization".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from deeprl.core.errors import ConfigError, NonFiniteError

__all__ = [
    "LQRProblem",
    "LQRSolution",
    "NotPositiveDefiniteError",
    "lqr_backward",
    "lqr_problem_of",
    "lqr_cost",
    "lqr_rollout",
    "time_invariant_lqr",
]

# Q_uu counts as positive definite when its smallest eigenvalue exceeds this fraction of its
# largest absolute eigenvalue (a condition number below 1e12): beyond that the gains are noise.
_PD_RTOL = 1e-12


class NotPositiveDefiniteError(ConfigError):
    """``Q_uu`` (+ ``reg I``) is not positive definite at some time step: no unique minimiser.

    ``t`` is the time step, ``min_eig`` the smallest eigenvalue of ``Q_uu + reg I``, ``reg``
    the regulariser that was used. iLQR-style callers catch this and increase ``reg``.
    """

    def __init__(self, message: str, t: int, min_eig: float, reg: float):
        super().__init__(message)
        self.t, self.min_eig, self.reg = t, min_eig, reg


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _array(name: str, value, shape: tuple, shape_text: str) -> np.ndarray:
    """A finite float64 copy of ``value`` of exactly ``shape`` (``None`` entries: any size)."""
    arr = np.array(value, dtype=np.float64)
    if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape)):
        want = tuple("?" if s is None else s for s in shape)
        raise ValueError(f"{name} must have shape {shape_text} = {want}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


# --------------------------------------------------------------------------------------
# Problem and solution
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LQRProblem:
    """A finite-horizon LQR problem; arrays are validated and stored as float64.

    Shapes: ``F (T, n, n+m)``, ``f (T, n)``, ``C (T, n+m, n+m)``, ``c (T, n+m)``,
    ``C_final (n, n)``, ``c_final (n,)`` (both default to zero), ``Sigma (n, n)`` or
    ``(T, n, n)`` (covariance of ``w_t``, symmetric positive semi-definite; ``None`` means
    deterministic dynamics). ``T``, ``n`` and ``m >= 1`` are read from ``F``.
    """

    F: np.ndarray
    f: np.ndarray
    C: np.ndarray
    c: np.ndarray
    C_final: np.ndarray | None = None
    c_final: np.ndarray | None = None
    Sigma: np.ndarray | None = None

    def __post_init__(self):
        F = np.asarray(self.F, dtype=np.float64)
        if F.ndim != 3 or F.shape[0] < 1 or F.shape[1] < 1 or F.shape[2] <= F.shape[1]:
            raise ValueError(f"F must have shape (T, n, n+m) with T, n, m >= 1, got {F.shape}")
        T, n, nm = F.shape
        F = _array("F", F, (T, n, nm), "(T, n, n+m)")
        f = _array("f", self.f, (T, n), "(T, n)")
        C = _sym(_array("C", self.C, (T, nm, nm), "(T, n+m, n+m)"))
        c = _array("c", self.c, (T, nm), "(T, n+m)")
        C_final = np.zeros((n, n)) if self.C_final is None else _sym(_array("C_final", self.C_final, (n, n), "(n, n)"))
        c_final = np.zeros(n) if self.c_final is None else _array("c_final", self.c_final, (n,), "(n,)")
        Sigma = None
        if self.Sigma is not None:
            S = np.asarray(self.Sigma, dtype=np.float64)
            if S.ndim == 3:
                Sigma = _sym(_array("Sigma", S, (T, n, n), "(T, n, n)"))
            else:
                Sigma = _sym(_array("Sigma", S, (n, n), "(n, n)"))
            eigs = np.linalg.eigvalsh(Sigma)
            if (eigs < -1e-10 * max(1.0, float(np.abs(eigs).max()))).any():
                raise ValueError(f"Sigma must be positive semi-definite, smallest eigenvalue {eigs.min():.3g}")
        for name, value in [("F", F), ("f", f), ("C", C), ("c", c), ("C_final", C_final),
                            ("c_final", c_final), ("Sigma", Sigma)]:
            object.__setattr__(self, name, value)

    @property
    def T(self) -> int:
        return self.F.shape[0]

    @property
    def n(self) -> int:
        return self.F.shape[1]

    @property
    def m(self) -> int:
        return self.F.shape[2] - self.F.shape[1]

    def sigma_at(self, t: int) -> np.ndarray | None:
        """Noise covariance of ``w_t`` (``None`` when deterministic)."""
        if self.Sigma is None:
            return None
        return self.Sigma[t] if self.Sigma.ndim == 3 else self.Sigma


@dataclass(frozen=True, eq=False)
class LQRSolution:
    """Output of :func:`lqr_backward`.

    ``K (T, m, n)``, ``k (T, m)``: controller ``u_t = K_t x_t + k_t``.
    ``V (T+1, n, n)``, ``v (T+1, n)``, ``const (T+1,)``: expected cost-to-go of that controller
    from state ``x`` at time ``t`` is ``1/2 x^T V_t x + x^T v_t + const_t`` (index ``T`` is the
    terminal cost). ``Q_uu (T, m, m)`` (without ``reg``) and ``q_u (T, m)``: the Q-function's
    control blocks, e.g. for a linear-Gaussian controller ``N(K x + k, Q_uu^{-1})`` or an
    iLQR expected-improvement ``sum_t k_t^T q_u + 1/2 k_t^T Q_uu k_t``.
    """

    K: np.ndarray
    k: np.ndarray
    V: np.ndarray
    v: np.ndarray
    const: np.ndarray
    Q_uu: np.ndarray
    q_u: np.ndarray

    def cost_to_go(self, x, t: int = 0) -> np.ndarray:
        """``1/2 x^T V_t x + x^T v_t + const_t`` for ``x`` of shape ``(n,)`` or ``(B, n)``."""
        x = np.asarray(x, dtype=np.float64)
        return 0.5 * np.einsum("...i,ij,...j->...", x, self.V[t], x) + x @ self.v[t] + self.const[t]


# --------------------------------------------------------------------------------------
# Backward pass, rollout, cost
# --------------------------------------------------------------------------------------


def lqr_backward(problem: LQRProblem, reg: float = 0.0) -> LQRSolution:
    """Dynamic-programming backward pass (see the module docstring for the recursion).

    ``reg >= 0`` is added to ``Q_uu`` before solving for the gains (Levenberg-Marquardt).
    Raises :class:`NotPositiveDefiniteError` (a ``ConfigError``) naming the first time step,
    counted backwards from ``T-1``, where ``Q_uu + reg I`` is not positive definite, and
    ``NonFiniteError`` if the recursion overflows; it never returns NaNs.
    """
    reg = float(reg)
    if not np.isfinite(reg) or reg < 0:
        raise ConfigError(f"reg must be a finite number >= 0, got {reg}")
    T, n, m = problem.T, problem.n, problem.m
    K = np.zeros((T, m, n))
    k = np.zeros((T, m))
    V = np.zeros((T + 1, n, n))
    v = np.zeros((T + 1, n))
    const = np.zeros(T + 1)
    Q_uu_all = np.zeros((T, m, m))
    q_u_all = np.zeros((T, m))
    V[T], v[T] = problem.C_final, problem.c_final
    x, u = slice(0, n), slice(n, n + m)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked and reported below
        for t in range(T - 1, -1, -1):
            F, f, Vn, vn = problem.F[t], problem.f[t], V[t + 1], v[t + 1]
            Q = _sym(problem.C[t] + F.T @ Vn @ F)
            q = problem.c[t] + F.T @ (Vn @ f + vn)
            if not (np.isfinite(Q).all() and np.isfinite(q).all()):
                raise NonFiniteError(f"LQR backward pass overflowed at time step t={t} of T={T} (Q_t or q_t)")
            Q_uu, Q_ux, q_u = Q[u, u], Q[u, x], q[u]
            Q_uu_reg = Q_uu + reg * np.eye(m)
            eigs = np.linalg.eigvalsh(Q_uu_reg)
            if not eigs[0] > _PD_RTOL * np.abs(eigs).max():
                hint = "increase reg" if reg > 0 else "make C_uu positive definite or pass reg > 0"
                raise NotPositiveDefiniteError(
                    f"Q_uu = C_uu + F_u^T V F_u{' + reg*I' if reg > 0 else ''} is not positive definite at time step "
                    f"t={t} of T={T} (smallest eigenvalue {eigs[0]:.3g}, reg={reg:g}): {hint}",
                    t=t, min_eig=float(eigs[0]), reg=reg)
            chol = linalg.cho_factor(Q_uu_reg)
            K[t] = -linalg.cho_solve(chol, Q_ux)
            k[t] = -linalg.cho_solve(chol, q_u)
            V[t] = _sym(Q[x, x] + Q[x, u] @ K[t] + K[t].T @ Q_ux + K[t].T @ Q_uu @ K[t])
            v[t] = q[x] + Q[x, u] @ k[t] + K[t].T @ q_u + K[t].T @ Q_uu @ k[t]
            const[t] = const[t + 1] + 0.5 * f @ Vn @ f + f @ vn + 0.5 * k[t] @ Q_uu @ k[t] + k[t] @ q_u
            Sigma = problem.sigma_at(t)
            if Sigma is not None:
                const[t] += 0.5 * np.trace(Vn @ Sigma)
            Q_uu_all[t], q_u_all[t] = Q_uu, q_u
            if not (np.isfinite(V[t]).all() and np.isfinite(v[t]).all() and np.isfinite(const[t])):
                raise NonFiniteError(f"LQR backward pass overflowed at time step t={t} of T={T} (V_t, v_t or const_t)")
    return LQRSolution(K=K, k=k, V=V, v=v, const=const, Q_uu=Q_uu_all, q_u=q_u_all)


def lqr_cost(problem: LQRProblem, states, actions) -> np.ndarray:
    """Total cost ``sum_t 1/2 z_t^T C_t z_t + z_t^T c_t + c_T(x_T)`` of given trajectories.

    ``states (..., T+1, n)``, ``actions (..., T, m)`` -> cost of shape ``(...)``.
    """
    states = np.asarray(states, dtype=np.float64)
    actions = np.asarray(actions, dtype=np.float64)
    T, n, m = problem.T, problem.n, problem.m
    if states.shape[-2:] != (T + 1, n):
        raise ValueError(f"states must have shape (..., T+1, n) = (..., {T + 1}, {n}), got {states.shape}")
    if actions.shape[-2:] != (T, m) or actions.shape[:-2] != states.shape[:-2]:
        raise ValueError(f"actions must have shape {states.shape[:-2] + (T, m)}, got {actions.shape}")
    z = np.concatenate([states[..., :-1, :], actions], axis=-1)
    running = 0.5 * np.einsum("...ti,tij,...tj->...", z, problem.C, z) + np.einsum("...ti,ti->...", z, problem.c)
    xT = states[..., -1, :]
    terminal = 0.5 * np.einsum("...i,ij,...j->...", xT, problem.C_final, xT) + xT @ problem.c_final
    return running + terminal


def lqr_rollout(problem: LQRProblem, x0, K, k, *, noise=None, rng=None):
    """Run the controller ``u_t = K_t x_t + k_t`` through ``x_{t+1} = F_t [x_t; u_t] + f_t + w_t``.

    ``x0`` is ``(n,)`` or a batch ``(B, n)``; ``K (T, m, n)``, ``k (T, m)`` (``K = 0`` and
    ``k = u`` plays an open-loop control sequence ``u``). ``noise``:

    - ``None``: deterministic, ``w_t = 0`` (even if ``problem.Sigma`` is set);
    - ``True``: ``w_t ~ N(0, problem.Sigma)`` drawn with ``rng`` (a ``np.random.Generator``,
      a seed, or ``None`` for fresh entropy);
    - an array ``(T, n)`` or ``(B, T, n)``: these ``w_t`` (a ``(B, T, n)`` array with ``x0`` of
      shape ``(n,)`` rolls ``B`` trajectories out from the same start).

    Returns ``states (..., T+1, n)``, ``actions (..., T, m)`` and the total cost ``(...)`` (see
    :func:`lqr_cost`), where ``...`` is the batch shape (empty for a single rollout).
    """
    T, n, m = problem.T, problem.n, problem.m
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim not in (1, 2) or x0.shape[-1] != n:
        raise ValueError(f"x0 must have shape (n,) = ({n},) or (B, n) = (?, {n}), got {x0.shape}")
    if not np.isfinite(x0).all():
        raise ValueError("x0 contains NaN or inf")
    K = _array("K", K, (T, m, n), "(T, m, n)")
    k = _array("k", k, (T, m), "(T, m)")
    batch = x0.shape[:-1]
    if noise is None:
        w = np.zeros(batch + (T, n))
    elif noise is True:
        if problem.Sigma is None:
            raise ValueError("noise=True needs problem.Sigma")
        gen = np.random.default_rng(rng)
        w = np.empty(batch + (T, n))
        for t in range(T):
            eigs, vecs = np.linalg.eigh(problem.sigma_at(t))
            root = vecs * np.sqrt(np.clip(eigs, 0.0, None))  # root @ root.T == Sigma (PSD-safe)
            w[..., t, :] = gen.standard_normal(batch + (n,)) @ root.T
    else:
        w = np.asarray(noise, dtype=np.float64)
        if w.ndim not in (2, 3) or w.shape[-2:] != (T, n) or (x0.ndim == 2 and w.shape[:-2] not in ((), batch)):
            raise ValueError(f"noise must have shape (T, n) = ({T}, {n}) or (B, T, n), got {w.shape}")
        if not np.isfinite(w).all():
            raise ValueError("noise contains NaN or inf")
        batch = np.broadcast_shapes(batch, w.shape[:-2])
        w = np.broadcast_to(w, batch + (T, n))
    states = np.empty(batch + (T + 1, n))
    actions = np.empty(batch + (T, m))
    states[..., 0, :] = x0
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked and reported below
        for t in range(T):
            xt = states[..., t, :]
            ut = xt @ K[t].T + k[t]
            actions[..., t, :] = ut
            x_next = xt @ problem.F[t, :, :n].T + ut @ problem.F[t, :, n:].T + problem.f[t]
            states[..., t + 1, :] = x_next + w[..., t, :]
        cost = lqr_cost(problem, states, actions)
    if not np.isfinite(cost).all():
        raise NonFiniteError("LQR rollout diverged: states, actions or cost overflowed to inf/NaN")
    return states, actions, cost


# --------------------------------------------------------------------------------------
# Time-invariant helper
# --------------------------------------------------------------------------------------


def time_invariant_lqr(A, B, Q, R, horizon: int, *, N=None, q=None, r=None, d=None,
                       Q_final=None, q_final=None, Sigma=None) -> LQRProblem:
    """The ``LQRProblem`` of ``x_{t+1} = A x_t + B u_t + d (+ w_t)`` for ``horizon`` steps with
    running cost ``1/2 x^T Q x + x^T N u + 1/2 u^T R u + q^T x + r^T u`` and terminal cost
    ``1/2 x^T Q_final x + q_final^T x``.

    That is ``F_t = [A B]``, ``f_t = d``, ``C_t = [[Q, N], [N^T, R]]``, ``c_t = [q; r]``.
    Shapes: ``A (n, n)``, ``B (n, m)``, ``Q (n, n)``, ``R (m, m)``, ``N (n, m)``, ``q, d,
    q_final (n,)``, ``r (m,)``, ``Q_final (n, n)``, ``Sigma (n, n)``; optional ones default to 0
    (``Sigma``: deterministic). With ``Q_final = P`` from ``scipy.linalg.solve_discrete_are(A, B,
    Q, R)`` every gain equals the infinite-horizon gain ``-(R + B^T P B)^{-1} B^T P A``.
    """
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon}")
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] < 1:
        raise ValueError(f"A must have shape (n, n), got {A.shape}")
    n = A.shape[0]
    B = np.asarray(B, dtype=np.float64)
    if B.ndim != 2 or B.shape[0] != n or B.shape[1] < 1:
        raise ValueError(f"B must have shape (n, m) = ({n}, ?), got {B.shape}")
    m = B.shape[1]
    A = _array("A", A, (n, n), "(n, n)")
    B = _array("B", B, (n, m), "(n, m)")
    Q = _array("Q", Q, (n, n), "(n, n)")
    R = _array("R", R, (m, m), "(m, m)")
    N = np.zeros((n, m)) if N is None else _array("N", N, (n, m), "(n, m)")
    q = np.zeros(n) if q is None else _array("q", q, (n,), "(n,)")
    r = np.zeros(m) if r is None else _array("r", r, (m,), "(m,)")
    d = np.zeros(n) if d is None else _array("d", d, (n,), "(n,)")
    if Q_final is not None:
        Q_final = _array("Q_final", Q_final, (n, n), "(n, n)")
    if q_final is not None:
        q_final = _array("q_final", q_final, (n,), "(n,)")
    T = int(horizon)
    F = np.broadcast_to(np.hstack([A, B]), (T, n, n + m))
    C = np.broadcast_to(np.block([[Q, N], [N.T, R]]), (T, n + m, n + m))
    return LQRProblem(
        F=F, f=np.broadcast_to(d, (T, n)), C=C, c=np.broadcast_to(np.concatenate([q, r]), (T, n + m)),
        C_final=Q_final, c_final=q_final, Sigma=Sigma,
    )


def lqr_problem_of(env, horizon: int | None = None) -> LQRProblem | None:
    """The :class:`LQRProblem` whose cost is ``env``'s negated return, or ``None`` when ``env`` is not a
    linear-quadratic environment (one with ``A, B, Q, R, Q_final, Sigma, horizon``, e.g.
    :class:`deeprl.envs.linear_quadratic.LinearQuadraticEnv`). ``horizon`` defaults to the env's."""
    env = getattr(env, "unwrapped", env)
    if not all(hasattr(env, k) for k in ("A", "B", "Q", "R", "Q_final", "Sigma", "horizon")):
        return None
    noisy = bool(np.any(np.asarray(env.Sigma) != 0))
    return time_invariant_lqr(env.A, env.B, env.Q, env.R, horizon or env.horizon, Q_final=env.Q_final,
                              Sigma=env.Sigma if noisy else None)
