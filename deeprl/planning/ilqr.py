"""Iterative LQR (iLQR: DDP without the dynamics' second-order terms) for known nonlinear dynamics.

CS285 lecture 10: around the current trajectory ``(X, U)`` (``X_0 = x0``, ``X_{t+1} =
f(X_t, U_t)``) linearise the dynamics and quadratise the cost in deviation coordinates
``dz_t = [x_t - X_t; u_t - U_t]``::

    dx_{t+1} ~= F_t dz_t                      F_t = [df/dx  df/du] at (X_t, U_t)    (f_t = 0)
    c(x_t, u_t) ~= c(X_t, U_t) + dz_t^T c_t + 1/2 dz_t^T C_t dz_t     c_t = grad c, C_t = hess c
    c_T(x_T) ~= c_T(X_T) + dx_T^T c_final + 1/2 dx_T^T C_final dx_T

solve that LQR with :func:`deeprl.planning.lqr.lqr_backward` (``reg`` added to ``Q_uu``,
Levenberg-Marquardt) and run the new controller through the *true* dynamics::

    x_0 = x0,   u_t = U_t + alpha k_t + K_t (x_t - X_t),   x_{t+1} = f(x_t, u_t)

for each ``alpha`` of the line search (all ``alpha`` are rolled out at once, as one batch).
The LQR model predicts the cost change ``dJ(alpha) = alpha sum_t k_t^T q_u + alpha^2/2 sum_t
k_t^T Q_uu k_t < 0`` (``Q_uu``, ``q_u`` from :class:`LQRSolution`); a step is accepted, for the
first ``alpha`` in the given order, only if the true cost decreases and
``(J_old - J_new) > armijo * (-dJ(alpha))`` (Armijo condition; ``armijo = 0``: any decrease).

Regularisation schedule: start at ``reg_init``; after an accepted step ``reg /= reg_factor``
(set to 0 below ``reg_min``); after ``NotPositiveDefiniteError`` from the backward pass (the
quadratised problem is non-convex in ``u``) or a failed line search ``reg = max(reg_min,
reg * reg_factor)``; the solve stops, unconverged, when ``reg`` exceeds ``reg_max``.

Convergence: the predicted improvement ``-dJ(1)`` or an accepted step's actual improvement
falls below ``tol * max(1, |J|)``.

Derivatives (``linearize``):

- ``"autograd"``: ``dynamics``, ``cost`` and ``final_cost`` are evaluated once on the whole
  trajectory as a batch, and ``torch.autograd.grad`` of each output column summed over the batch
  gives every row's Jacobian at once (one reverse pass per output dimension; rows must be
  independent, as for any batched dynamics). Hessians: the same trick applied to the gradient.
- ``"finite_differences"``: central differences, all perturbations in one batched call:
  ``(f(z + e_j) - f(z - e_j)) / 2 eps`` for the Jacobian (``eps = fd_eps``, default 1e-6 times
  ``max(1, |z_j|)``), and the 4-point second difference for cost Hessians (step ``fd_eps_cost``,
  default 1e-4 times ``max(1, |z_j|)``). Works with any function of torch tensors (no graph
  needed), but across a kink (a clip) it averages the one-sided slopes.

Control bounds ``u_bounds = (low, high)`` (scalars or ``(m,)``):

- ``bound_mode="clamp"`` (default): every control the planner produces (``U_init`` and every
  forward-pass ``u_t``) is clamped into the box; the LQR step itself ignores the bounds and the
  line search judges the clamped trajectory (so a step that only pushes against a bound is
  rejected, never accepted with a wrong cost). Simple and exact for the cost, but the gains
  do not know that a saturated control cannot move.
- ``bound_mode="tanh"``: the planner optimises unconstrained ``w`` with ``u = low + (high -
  low) (tanh(w) + 1) / 2``; dynamics and cost are composed with the squashing, so bounds hold
  exactly and everything stays smooth (derivatives vanish deep in saturation, which ``reg``
  handles). The returned ``U``, ``K``, ``k`` are mapped back to ``u`` coordinates (``K``, ``k``
  to first order: multiplied by ``du/dw`` at the solution).

  With ``active_set=True`` (default) the backward pass is re-solved with every control that
  sits at a bound and whose step ``k`` pushes outwards frozen (its ``F_u`` column, gradient
  and cross terms zeroed, so ``K = k = 0`` there): a cheap approximation of box-constrained
  DDP that stops the line search from failing on steps that only push against a bound.

``psd_cost=True`` projects every cost Hessian onto the PSD cone (negative eigenvalues set to 0)
before the backward pass: then ``Q_uu`` stays positive definite whenever the control cost is
strictly convex, and iLQR behaves like Gauss-Newton. With exact Hessians (default) a
non-convex cost (e.g. ``2 (1 - cos theta)`` near the bottom of a pendulum) makes ``Q_uu``
indefinite and only ``reg`` rescues the step (tested in ``tests/unit/test_ilqr.py``).

Function signatures (torch, float64, batched over rows): ``dynamics(x (B, n), u (B, m)) ->
(B, n)``, ``cost(x (B, n), u (B, m)) -> (B,)``, ``final_cost(x (B, n)) -> (B,)`` or ``None``.

Reference: Tassa, Erez & Todorov 2012; Li & Todorov 2004.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from deeprl.core.errors import ConfigError, NonFiniteError
from deeprl.planning.lqr import LQRProblem, LQRSolution, NotPositiveDefiniteError, lqr_backward

__all__ = ["ILQRResult", "ilqr", "linearize_dynamics", "quadratize_cost"]

DEFAULT_ALPHAS = tuple(0.5 ** i for i in range(11))  # 1, 0.5, ..., ~1e-3


@dataclass(eq=False)
class ILQRResult:
    """Output of :func:`ilqr` (numpy float64 arrays).

    ``X (T+1, n)``, ``U (T, m)``: the optimised trajectory (``U`` within ``u_bounds``).
    ``K (T, m, n)``, ``k (T, m)``: LQR gains at that trajectory; the tracking controller is
    ``u_t = U_t + K_t (x_t - X_t)`` (``k`` is ~0 at convergence).
    ``costs``: the initial cost, then one entry per accepted iteration (strictly decreasing).
    Per iteration (one backward pass that was not the final convergence check):
    ``accepted`` (bool), ``regs`` (the ``reg`` that iteration used), ``alphas`` (the accepted
    step size, NaN if none), ``statuses`` (``"accepted"``, ``"not_pd"``, ``"line_search_failed"``).
    ``converged``, ``message``, ``wall_time`` (seconds).
    """

    X: np.ndarray
    U: np.ndarray
    K: np.ndarray
    k: np.ndarray
    costs: np.ndarray
    accepted: np.ndarray
    regs: np.ndarray
    alphas: np.ndarray
    statuses: list = field(default_factory=list)
    converged: bool = False
    message: str = ""
    wall_time: float = 0.0

    @property
    def cost(self) -> float:
        return float(self.costs[-1])

    @property
    def n_iter(self) -> int:
        return len(self.accepted)

    def control(self, t: int, x) -> np.ndarray:
        """Tracking control ``U_t + K_t (x - X_t)`` (not clipped) for ``x (n,)`` or ``(B, n)``."""
        x = np.asarray(x, dtype=np.float64)
        return self.U[t] + (x - self.X[t]) @ self.K[t].T


# --------------------------------------------------------------------------------------
# Derivatives
# --------------------------------------------------------------------------------------


def _jac_autograd(fn: Callable, Z: torch.Tensor) -> torch.Tensor:
    """Row-wise Jacobians ``(B, out, d)`` of a batched ``fn(Z (B, d)) -> (B, out)``."""
    Z = Z.detach().requires_grad_(True)
    with torch.enable_grad():
        out = fn(Z)
        rows = []
        for i in range(out.shape[1]):
            if out.requires_grad:
                (g,) = torch.autograd.grad(out[:, i].sum(), Z, retain_graph=True, allow_unused=True)
            else:
                g = None
            rows.append(torch.zeros_like(Z) if g is None else g)
    return torch.stack(rows, dim=1).detach()


def _grad_hess_autograd(fn: Callable, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise gradients ``(B, d)`` and Hessians ``(B, d, d)`` of ``fn(Z (B, d)) -> (B,)``."""
    Z = Z.detach().requires_grad_(True)
    B, d = Z.shape
    with torch.enable_grad():
        c = fn(Z)
        if not c.requires_grad:
            return torch.zeros_like(Z).detach(), torch.zeros(B, d, d, dtype=Z.dtype)
        (g,) = torch.autograd.grad(c.sum(), Z, create_graph=True, allow_unused=True)
        if g is None:
            return torch.zeros_like(Z).detach(), torch.zeros(B, d, d, dtype=Z.dtype)
        rows = []
        for i in range(d):
            if g.requires_grad:
                (h,) = torch.autograd.grad(g[:, i].sum(), Z, retain_graph=True, allow_unused=True)
            else:
                h = None
            rows.append(torch.zeros_like(Z) if h is None else h)
    H = torch.stack(rows, dim=1).detach()
    return g.detach(), 0.5 * (H + H.transpose(1, 2))


def _steps(Z: torch.Tensor, eps: float) -> torch.Tensor:
    return eps * torch.clamp(Z.abs(), min=1.0)  # (B, d)


def _jac_fd(fn: Callable, Z: torch.Tensor, eps: float) -> torch.Tensor:
    B, d = Z.shape
    h = _steps(Z, eps)
    E = torch.eye(d, dtype=Z.dtype)
    pert = E[:, None, :] * h[None, :, :]  # (d, B, d): perturbation j for row b
    Zs = torch.cat([(Z[None] + pert).reshape(-1, d), (Z[None] - pert).reshape(-1, d)])
    out = fn(Zs)
    plus, minus = out[: d * B].reshape(d, B, -1), out[d * B:].reshape(d, B, -1)
    J = (plus - minus) / (2 * h.T[:, :, None])  # (d, B, out)
    return J.permute(1, 2, 0)


def _grad_hess_fd(fn: Callable, Z: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    B, d = Z.shape
    h = _steps(Z, eps)  # (B, d)
    E = torch.eye(d, dtype=Z.dtype)
    ei = E[:, None, None, :] * h[None, None, :, :]  # (d, 1, B, d)
    ej = E[None, :, None, :] * h[None, None, :, :]  # (1, d, B, d)
    batch = [Z[None] + E[:, None, :] * h[None], Z[None] - E[:, None, :] * h[None]]  # gradient: 2 x (d, B, d)
    for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        batch.append((Z[None, None] + si * ei + sj * ej).reshape(d * d, B, d))
    Zs = torch.cat([b.reshape(-1, d) for b in batch])
    c = fn(Zs)
    n1 = d * B
    cp, cm = c[:n1].reshape(d, B), c[n1: 2 * n1].reshape(d, B)
    g = ((cp - cm) / (2 * h.T)).T  # (B, d)
    rest = c[2 * n1:].reshape(4, d, d, B)
    hh = h.T[:, None, :] * h.T[None, :, :]  # (d, d, B)
    H = ((rest[0] - rest[1] - rest[2] + rest[3]) / (4 * hh)).permute(2, 0, 1)
    return g, 0.5 * (H + H.transpose(1, 2))


def linearize_dynamics(dynamics: Callable, X, U, *, method: str = "autograd", eps: float = 1e-6) -> np.ndarray:
    """``F_t = [df/dx df/du]`` at each ``(X_t, U_t)``: ``X (T, n)``, ``U (T, m)`` -> ``(T, n, n+m)``."""
    X, U = _tensor(X), _tensor(U)
    n = X.shape[1]

    def fz(Z):
        return dynamics(Z[:, :n], Z[:, n:])

    Z = torch.cat([X, U], dim=1)
    J = _jac_autograd(fz, Z) if method == "autograd" else _jac_fd(fz, Z, eps)
    return J.numpy()


def quadratize_cost(cost: Callable, X, U=None, *, method: str = "autograd", eps: float = 1e-4):
    """Gradients ``(T, d)`` and Hessians ``(T, d, d)`` of ``cost(x, u)`` (``d = n+m``) at each
    ``(X_t, U_t)``, or of ``cost(x)`` (``d = n``) when ``U`` is ``None``."""
    X = _tensor(X)
    n = X.shape[1]
    if U is None:
        Z, fz = X, cost
    else:
        Z = torch.cat([X, _tensor(U)], dim=1)

        def fz(Z):
            return cost(Z[:, :n], Z[:, n:])

    g, H = _grad_hess_autograd(fz, Z) if method == "autograd" else _grad_hess_fd(fz, Z, eps)
    return g.numpy(), H.numpy()


def _psd(H: np.ndarray) -> np.ndarray:
    """Project symmetric matrices ``(..., d, d)`` onto the PSD cone (negative eigenvalues -> 0)."""
    w, V = np.linalg.eigh(H)
    return (V * np.clip(w, 0.0, None)[..., None, :]) @ np.swapaxes(V, -1, -2)


def _tensor(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


# --------------------------------------------------------------------------------------
# iLQR
# --------------------------------------------------------------------------------------


def ilqr(dynamics: Callable, cost: Callable, final_cost: Callable | None, x0, U_init, *,
         max_iter: int = 100, reg_init: float = 1.0, reg_min: float = 1e-6, reg_max: float = 1e10,
         reg_factor: float = 10.0, alphas=DEFAULT_ALPHAS, armijo: float = 1e-4,
         linearize: str = "autograd", fd_eps: float = 1e-6, fd_eps_cost: float = 1e-4,
         tol: float = 1e-6, u_bounds=None, bound_mode: str = "clamp", active_set: bool = True,
         psd_cost: bool = False,
         callback: Callable | None = None) -> ILQRResult:
    """Optimise ``U`` (``(T, m)``, initial guess ``U_init``) from ``x0 (n,)``; see the module
    docstring. ``callback(it, info_dict)`` is called after every iteration."""
    start = time.perf_counter()
    if linearize not in ("autograd", "finite_differences"):
        raise ConfigError(f"linearize must be 'autograd' or 'finite_differences', got {linearize!r}")
    if linearize == "autograd" and torch.is_inference_mode_enabled():  # would give zero derivatives, silently
        raise RuntimeError("ilqr(linearize='autograd') cannot differentiate under torch.inference_mode(); "
                           "call it outside, or inside `with torch.inference_mode(False):`")
    if bound_mode not in ("clamp", "tanh"):
        raise ConfigError(f"bound_mode must be 'clamp' or 'tanh', got {bound_mode!r}")
    for name, val in [("reg_init", reg_init), ("reg_min", reg_min), ("armijo", armijo), ("tol", tol)]:
        if not (np.isfinite(val) and val >= 0):
            raise ConfigError(f"{name} must be a finite number >= 0, got {val}")
    if not (reg_factor > 1 and reg_max > reg_min and reg_min > 0):
        raise ConfigError("need reg_factor > 1 and reg_max > reg_min > 0")
    alphas = tuple(float(a) for a in alphas)
    if not alphas or any(not (0 < a <= 1) for a in alphas):
        raise ConfigError(f"alphas must be a non-empty sequence of step sizes in (0, 1], got {alphas}")
    if int(max_iter) != max_iter or max_iter < 1:
        raise ConfigError(f"max_iter must be an integer >= 1, got {max_iter}")

    x0 = _tensor(x0)
    U = _tensor(U_init).clone()
    if x0.ndim != 1 or U.ndim != 2 or U.shape[0] < 1:
        raise ValueError(f"x0 must have shape (n,) and U_init (T, m), got {tuple(x0.shape)} and {tuple(U.shape)}")
    T, m = U.shape
    n = x0.shape[0]
    if not (torch.isfinite(x0).all() and torch.isfinite(U).all()):
        raise ValueError("x0 or U_init contains NaN or inf")

    lo = hi = None
    if u_bounds is not None:
        lo = torch.broadcast_to(_tensor(u_bounds[0]), (m,)).clone()
        hi = torch.broadcast_to(_tensor(u_bounds[1]), (m,)).clone()
        if not (lo < hi).all():
            raise ConfigError(f"u_bounds need low < high, got {u_bounds}")

    dyn, run_cost = dynamics, cost
    squash = None
    if u_bounds is not None and bound_mode == "tanh":
        def squash(w):
            return lo + (hi - lo) * 0.5 * (torch.tanh(w) + 1.0)

        def dyn(x, w):
            return dynamics(x, squash(w))

        def run_cost(x, w):
            return cost(x, squash(w))

        frac = torch.clamp((U - lo) / (hi - lo), 1e-6, 1 - 1e-6)
        U = torch.atanh(2 * frac - 1)  # optimise w; U is "w" below
        lo_c = hi_c = None
    else:
        lo_c, hi_c = lo, hi
        if lo is not None:
            U = torch.clamp(U, lo, hi)

    def total_cost(Xb: torch.Tensor, Ub: torch.Tensor) -> torch.Tensor:
        """``Xb (A, T+1, n)``, ``Ub (A, T, m)`` -> ``(A,)``."""
        A = Xb.shape[0]
        J = run_cost(Xb[:, :-1].reshape(-1, n), Ub.reshape(-1, m)).reshape(A, T).sum(1)
        if final_cost is not None:
            J = J + final_cost(Xb[:, -1])
        return J

    @torch.no_grad()
    def rollout(X_ref, U_ref, K, k, step_sizes):
        A = len(step_sizes)
        a = torch.tensor(step_sizes, dtype=torch.float64)[:, None]
        x = x0.expand(A, n)
        Xs, Us = [x], []
        for t in range(T):
            if K is None:
                u = U_ref[t].expand(A, m)
            else:
                u = U_ref[t] + a * k[t] + (x - X_ref[t]) @ K[t].T
            if lo_c is not None:
                u = torch.clamp(u, lo_c, hi_c)
            x = dyn(x, u)
            if x.shape != (A, n):
                raise ValueError(f"dynamics must return shape (B, n) = ({A}, {n}), got {tuple(x.shape)}")
            Xs.append(x)
            Us.append(u)
        Xb, Ub = torch.stack(Xs, 1), torch.stack(Us, 1)
        return Xb, Ub, total_cost(Xb, Ub)

    def linearize_all(X, U):
        meth = linearize
        Fz = linearize_dynamics(dyn, X[:-1], U, method=meth, eps=fd_eps)
        c, C = quadratize_cost(run_cost, X[:-1], U, method=meth, eps=fd_eps_cost)
        if final_cost is not None:
            cf, Cf = quadratize_cost(final_cost, X[-1:], None, method=meth, eps=fd_eps_cost)
            cf, Cf = cf[0], Cf[0]
        else:
            cf = Cf = None
        if psd_cost:
            C = _psd(C)
            Cf = None if Cf is None else _psd(Cf)
        for name, arr in [("dynamics Jacobian", Fz), ("cost gradient", c), ("cost Hessian", C)]:
            if not np.isfinite(arr).all():
                raise NonFiniteError(f"iLQR: {name} contains NaN or inf")
        return Fz, c, C, cf, Cf

    def make_problem(lin, frozen=None):
        Fz, c, C, cf, Cf = lin
        if frozen is not None and frozen.any():
            # Controls held at a bound (clamp mode, see the module docstring): in the LQR model
            # they have no effect on the state, no gradient and no coupling, so K = k = 0 there.
            Fz, C, c = Fz.copy(), C.copy(), c.copy()
            for t, j in zip(*np.nonzero(frozen)):
                Fz[t, :, n + j] = 0.0
                c[t, n + j] = 0.0
                diag = C[t, n + j, n + j]
                C[t, n + j, :] = 0.0
                C[t, :, n + j] = 0.0
                C[t, n + j, n + j] = diag if diag > 0 else 1.0
        return LQRProblem(F=Fz, f=np.zeros((T, n)), C=C, c=c, C_final=Cf, c_final=cf)

    def solve(lin, U, r):
        """Backward pass; in clamp mode re-solved with controls that sit at a bound and whose
        step ``k`` pushes outwards frozen (a cheap active-set approximation of box-DDP)."""
        sol = lqr_backward(make_problem(lin), reg=r)
        if lo_c is None or not active_set:
            return sol
        Un = U.numpy()
        at_lo = Un <= lo_c.numpy() + 1e-12
        at_hi = Un >= hi_c.numpy() - 1e-12
        frozen = np.zeros_like(at_lo)
        for _ in range(3):
            new = frozen | (at_lo & (sol.k < 0)) | (at_hi & (sol.k > 0))
            if (new == frozen).all():
                break
            frozen = new
            sol = lqr_backward(make_problem(lin, frozen), reg=r)
        return sol

    Xb, Ub, Jb = rollout(None, U, None, None, (1.0,))
    X, U, J = Xb[0], Ub[0], float(Jb[0])
    if not np.isfinite(J) or not torch.isfinite(X).all():
        raise NonFiniteError("iLQR: the initial rollout diverged (NaN or inf in states or cost)")

    reg = float(reg_init)
    costs, accepted, regs, used_alphas, statuses = [J], [], [], [], []
    converged, message = False, f"max_iter={max_iter} reached"
    lin = None
    sol: LQRSolution | None = None
    sol_current = False  # sol was computed at the current (X, U)

    def reject(it, status):
        """Record a failed iteration and raise reg; True when reg has grown past reg_max."""
        nonlocal reg
        accepted.append(False), used_alphas.append(np.nan), statuses.append(status)
        reg = max(reg_min, reg * reg_factor)
        if callback is not None:
            callback(it, dict(status=status, reg=regs[-1], cost=J))
        return reg > reg_max

    for it in range(max_iter):
        if lin is None:
            lin = linearize_all(X, U)
        try:
            sol = solve(lin, U, reg)
        except NotPositiveDefiniteError:
            regs.append(reg)
            sol_current = False
            if reject(it, "not_pd"):
                message = f"reg exceeded reg_max={reg_max:g} (Q_uu not positive definite)"
                break
            continue
        sol_current = True
        dV1 = float(np.einsum("ti,ti->", sol.k, sol.q_u))
        dV2 = 0.5 * float(np.einsum("ti,tij,tj->", sol.k, sol.Q_uu, sol.k))
        if -(dV1 + dV2) <= tol * max(1.0, abs(J)):
            converged, message = True, "predicted improvement below tol"
            break
        Kt, kt = torch.from_numpy(sol.K), torch.from_numpy(sol.k)
        Xb, Ub, Jb = rollout(X, U, Kt, kt, alphas)
        choice = None
        for i, a in enumerate(alphas):
            Jn = float(Jb[i])
            expected = -(a * dV1 + a * a * dV2)
            if np.isfinite(Jn) and Jn < J and (J - Jn) > armijo * expected and torch.isfinite(Xb[i]).all():
                choice = i
                break
        regs.append(reg)
        if choice is None:
            if reject(it, "line_search_failed"):
                message = f"reg exceeded reg_max={reg_max:g} (line search found no decrease)"
                break
            continue
        J_old = J
        X, U, J = Xb[choice], Ub[choice], float(Jb[choice])
        lin, sol_current = None, False
        accepted.append(True), used_alphas.append(alphas[choice]), statuses.append("accepted")
        costs.append(J)
        reg = reg / reg_factor
        if reg < reg_min:
            reg = 0.0
        if callback is not None:
            callback(it, dict(status="accepted", reg=regs[-1], cost=J, alpha=alphas[choice]))
        if choice == 0 and J_old - J <= tol * max(1.0, abs(J)):
            converged, message = True, "improvement below tol"
            break

    # Gains at the final trajectory (for closed-loop tracking).
    if not sol_current:
        if lin is None:
            lin = linearize_all(X, U)
        sol = None
        r = reg
        while r <= reg_max:
            try:
                sol = solve(lin, U, r)
                break
            except NotPositiveDefiniteError:
                r = max(reg_min, r * reg_factor)
    K = np.zeros((T, m, n)) if sol is None else sol.K.copy()
    k = np.zeros((T, m)) if sol is None else sol.k.copy()
    U_out = U
    if squash is not None:
        U_out = squash(U)
        dudw = (0.5 * (hi - lo) * (1 - torch.tanh(U) ** 2)).numpy()  # (T, m)
        K, k = K * dudw[:, :, None], k * dudw
    return ILQRResult(
        X=X.numpy().copy(), U=U_out.numpy().copy(), K=K, k=k, costs=np.array(costs),
        accepted=np.array(accepted, dtype=bool), regs=np.array(regs, dtype=np.float64),
        alphas=np.array(used_alphas, dtype=np.float64), statuses=statuses, converged=converged,
        message=message, wall_time=time.perf_counter() - start,
    )
