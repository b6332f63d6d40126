"""Tests for deeprl.planning.lqr against independent references.

- Infinite horizon: scipy.linalg.solve_discrete_are (the Riccati fixed point), never our recursion.
- Brute force: the whole open-loop problem written as one quadratic program in the stacked
  controls ``U = [u_0; ...; u_{T-1}]``. The states are affine in ``U`` (``x_t = G_t U + g_t``,
  built by propagating the dynamics on the matrices ``G_t, g_t``), so the total cost is
  ``1/2 U^T H U + U^T h + h0`` and its minimiser solves ``H U = -h`` (np.linalg.solve).
- Monte Carlo for the noisy value function.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import linalg

from deeprl.core.errors import ConfigError, NonFiniteError
from deeprl.planning import (
    LQRProblem,
    NotPositiveDefiniteError,
    lqr_backward,
    lqr_cost,
    lqr_rollout,
    time_invariant_lqr,
)

# --------------------------------------------------------------------------------------
# Problems and references
# --------------------------------------------------------------------------------------


def random_spd(rng, d, scale=1.0, floor=0.1):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + floor * np.eye(d))


def random_problem(rng, T=4, n=2, m=1, Sigma=None, uu_shift=0.0):
    """Time-varying problem with affine dynamics, affine cost terms and x-u cross terms.

    ``uu_shift`` is added to every C_uu (a negative shift makes the running cost non-convex in u).
    """
    F = rng.normal(size=(T, n, n + m)) * 0.7
    f = rng.normal(size=(T, n))
    C = np.stack([random_spd(rng, n + m) for _ in range(T)])
    C[:, n:, n:] += uu_shift * np.eye(m)
    c = rng.normal(size=(T, n + m))
    return LQRProblem(F=F, f=f, C=C, c=c, C_final=random_spd(rng, n), c_final=rng.normal(size=n), Sigma=Sigma)


def stacked_qp(p: LQRProblem, x0):
    """(H, h, h0) with total cost(U) = 1/2 U^T H U + U^T h + h0, built by propagating x_t = G U + g."""
    T, n, m = p.T, p.n, p.m
    G, g = np.zeros((n, T * m)), np.asarray(x0, float).copy()
    H, h, h0 = np.zeros((T * m, T * m)), np.zeros(T * m), 0.0
    for t in range(T):
        E = np.zeros((m, T * m))
        E[:, t * m:(t + 1) * m] = np.eye(m)
        Z, zc = np.vstack([G, E]), np.concatenate([g, np.zeros(m)])  # z_t = Z U + zc
        H += Z.T @ p.C[t] @ Z
        h += Z.T @ (p.C[t] @ zc + p.c[t])
        h0 += 0.5 * zc @ p.C[t] @ zc + zc @ p.c[t]
        G, g = p.F[t] @ Z, p.F[t] @ zc + p.f[t]
    H += G.T @ p.C_final @ G
    h += G.T @ (p.C_final @ g + p.c_final)
    h0 += 0.5 * g @ p.C_final @ g + g @ p.c_final
    return H, h, h0


def open_loop(p: LQRProblem, x0, U):
    """Simulate open-loop controls with an explicit loop; returns (states, actions, cost)."""
    T, m = p.T, p.m
    xs, us, cost = [np.asarray(x0, float)], np.asarray(U, float).reshape(T, m), 0.0
    for t in range(T):
        z = np.concatenate([xs[-1], us[t]])
        cost += 0.5 * z @ p.C[t] @ z + z @ p.c[t]
        xs.append(p.F[t] @ z + p.f[t])
    cost += 0.5 * xs[-1] @ p.C_final @ xs[-1] + xs[-1] @ p.c_final
    return np.array(xs), us, cost


def dare_gain(A, B, Q, R):
    P = linalg.solve_discrete_are(A, B, Q, R)
    return -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A), P


def double_integrator(dt=0.1):
    A = np.array([[1.0, dt], [0.0, 1.0]])
    B = np.array([[0.5 * dt**2], [dt]])
    return A, B, np.eye(2), np.array([[0.1]])


def random_system(seed, n=4, m=2):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    A *= 1.2 / np.abs(np.linalg.eigvals(A)).max()  # open-loop unstable: spectral radius 1.2
    B = rng.normal(size=(n, m))
    return A, B, random_spd(rng, n), random_spd(rng, m)


SYSTEMS = [double_integrator(), random_system(0), random_system(1), random_system(2, n=3, m=1)]

# --------------------------------------------------------------------------------------
# Infinite-horizon limit (discrete algebraic Riccati equation)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("system", SYSTEMS, ids=["double_integrator", "rand4x2_a", "rand4x2_b", "rand3x1"])
def test_first_gain_converges_to_dare_gain(system):
    A, B, Q, R = system
    K_inf, P = dare_gain(A, B, Q, R)
    errors = []
    for horizon in (10, 50, 400):
        sol = lqr_backward(time_invariant_lqr(A, B, Q, R, horizon))
        errors.append(np.abs(sol.K[0] - K_inf).max())
    assert errors[-1] < 1e-6, errors
    assert errors[0] > errors[-1]
    np.testing.assert_allclose(sol.V[0], P, rtol=1e-6, atol=1e-6)
    # the gains and values are for a zero terminal cost here: last gain is myopic (u = 0 when N = 0)
    np.testing.assert_allclose(sol.K[-1], 0.0, atol=1e-12)


@pytest.mark.parametrize("system", SYSTEMS[:2], ids=["double_integrator", "rand4x2"])
def test_terminal_cost_P_gives_stationary_gains(system):
    A, B, Q, R = system
    K_inf, P = dare_gain(A, B, Q, R)
    sol = lqr_backward(time_invariant_lqr(A, B, Q, R, 20, Q_final=P))
    np.testing.assert_allclose(sol.K, np.broadcast_to(K_inf, sol.K.shape), atol=1e-9)
    np.testing.assert_allclose(sol.V, np.broadcast_to(P, sol.V.shape), rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------------------
# Brute force: one big QP in the stacked controls
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("uu_shift", [0.0, -0.15], ids=["convex_cost", "nonconvex_C_uu"])
def test_matches_stacked_qp(seed, uu_shift):
    rng = np.random.default_rng(seed)
    p = random_problem(rng, T=4, n=2, m=1, uu_shift=uu_shift)
    x0 = rng.normal(size=2)
    H, h, h0 = stacked_qp(p, x0)
    assert np.linalg.eigvalsh(H).min() > 0  # the QP has a unique minimiser
    U_star = np.linalg.solve(H, -h)
    J_star = 0.5 * U_star @ H @ U_star + U_star @ h + h0
    assert np.isclose(open_loop(p, x0, U_star)[2], J_star, rtol=1e-10)  # QP matrices are right

    sol = lqr_backward(p)
    states, actions, cost = lqr_rollout(p, x0, sol.K, sol.k)
    np.testing.assert_allclose(actions.ravel(), U_star, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cost, J_star, rtol=1e-8)
    np.testing.assert_allclose(sol.cost_to_go(x0), J_star, rtol=1e-8)
    np.testing.assert_allclose(states, open_loop(p, x0, U_star)[0], rtol=1e-8, atol=1e-10)


def test_nonconvex_running_cost_but_positive_definite_Q_uu():
    """C_uu < 0 at every step is fine as long as Q_uu = C_uu + F_u^T V F_u > 0: the check is on Q_uu."""
    A, B = np.array([[1.0, 0.1], [0.0, 1.0]]), np.array([[0.0], [1.0]])
    p = time_invariant_lqr(A, B, np.eye(2), np.array([[-0.05]]), 5, Q_final=10 * np.eye(2))
    sol = lqr_backward(p)
    assert (sol.Q_uu > 0).all()
    x0 = np.array([1.0, -0.5])
    H, h, h0 = stacked_qp(p, x0)
    U_star = np.linalg.solve(H, -h)
    np.testing.assert_allclose(lqr_rollout(p, x0, sol.K, sol.k)[1].ravel(), U_star, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_cost_to_go_at_every_step_matches_stacked_qp(seed):
    """V_t is the optimal cost of the tail problem started at time t from any state."""
    rng = np.random.default_rng(100 + seed)
    p = random_problem(rng, T=5, n=3, m=2)
    sol = lqr_backward(p)
    for t in range(p.T + 1):
        x = rng.normal(size=3)
        if t == p.T:
            expected = 0.5 * x @ p.C_final @ x + x @ p.c_final
        else:
            tail = LQRProblem(p.F[t:], p.f[t:], p.C[t:], p.c[t:], p.C_final, p.c_final)
            H, h, h0 = stacked_qp(tail, x)
            expected = h0 - 0.5 * h @ np.linalg.solve(H, h)
        np.testing.assert_allclose(sol.cost_to_go(x, t), expected, rtol=1e-8)


def test_perturbing_optimal_controls_increases_cost():
    rng = np.random.default_rng(7)
    p = random_problem(rng, T=6, n=3, m=2)
    x0 = rng.normal(size=3)
    sol = lqr_backward(p)
    _, actions, cost = lqr_rollout(p, x0, sol.K, sol.k)
    H, _, _ = stacked_qp(p, x0)
    zeros = np.zeros_like(sol.K)
    for scale in (1e-3, 1e-1, 1.0):
        deltas = scale * rng.normal(size=(200,) + actions.shape)
        # open loop: K = 0, k = perturbed controls
        costs = np.array([lqr_rollout(p, x0, zeros, actions + d)[2] for d in deltas])
        assert (costs > cost).all()
        # the increase is exactly the quadratic form of the stacked QP (gradient is zero at the optimum)
        increase = 0.5 * np.einsum("bi,ij,bj->b", deltas.reshape(200, -1), H, deltas.reshape(200, -1))
        np.testing.assert_allclose(costs - cost, increase, rtol=1e-6, atol=1e-12)


# --------------------------------------------------------------------------------------
# Closed loop, noise, certainty equivalence
# --------------------------------------------------------------------------------------


def test_deterministic_closed_loop_cost_equals_value_prediction_from_many_starts():
    rng = np.random.default_rng(3)
    p = random_problem(rng, T=8, n=3, m=2)
    sol = lqr_backward(p)
    x0 = rng.normal(size=(50, 3))
    states, actions, cost = lqr_rollout(p, x0, sol.K, sol.k)
    assert states.shape == (50, 9, 3) and actions.shape == (50, 8, 2) and cost.shape == (50,)
    np.testing.assert_allclose(cost, sol.cost_to_go(x0), rtol=1e-9)
    np.testing.assert_allclose(cost, lqr_cost(p, states, actions), rtol=1e-12)
    for i in range(3):  # batch rollout agrees with a single rollout
        np.testing.assert_allclose(lqr_rollout(p, x0[i], sol.K, sol.k)[2], cost[i], rtol=1e-12)


def test_noise_only_changes_the_constant():
    rng = np.random.default_rng(4)
    Sigma = random_spd(rng, 3, scale=0.3)
    p = random_problem(np.random.default_rng(5), T=6, n=3, m=2)
    pn = LQRProblem(p.F, p.f, p.C, p.c, p.C_final, p.c_final, Sigma=Sigma)
    sol, soln = lqr_backward(p), lqr_backward(pn)
    for name in ("K", "k", "V", "v"):
        np.testing.assert_array_equal(getattr(sol, name), getattr(soln, name))
    extra = np.array([sum(0.5 * np.trace(sol.V[s + 1] @ Sigma) for s in range(t, 6)) for t in range(7)])
    np.testing.assert_allclose(soln.const - sol.const, extra, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("time_varying_sigma", [False, True])
def test_monte_carlo_mean_cost_matches_value_prediction(time_varying_sigma):
    rng = np.random.default_rng(11)
    T, n = 10, 2
    if time_varying_sigma:
        Sigma = np.stack([random_spd(rng, n, scale=0.2 * (1 + t % 3)) for t in range(T)])
    else:
        Sigma = np.array([[0.3, 0.1], [0.1, 0.2]])
    p = random_problem(rng, T=T, n=n, m=1, Sigma=Sigma)
    sol = lqr_backward(p)
    x0 = rng.normal(size=n)
    B = 20_000
    _, _, cost = lqr_rollout(p, np.broadcast_to(x0, (B, n)), sol.K, sol.k, noise=True, rng=12345)
    se = cost.std(ddof=1) / np.sqrt(B)
    prediction = sol.cost_to_go(x0)
    assert abs(cost.mean() - prediction) < 4 * se, (cost.mean(), prediction, se)
    # the noise really matters at this sample size: the deterministic prediction is rejected
    deterministic = lqr_backward(LQRProblem(p.F, p.f, p.C, p.c, p.C_final, p.c_final)).cost_to_go(x0)
    assert abs(cost.mean() - deterministic) > 10 * se


def test_explicit_noise_array_and_seeded_sampling():
    rng = np.random.default_rng(8)
    p = random_problem(rng, T=4, n=2, m=1, Sigma=0.1 * np.eye(2))
    sol = lqr_backward(p)
    x0 = np.ones(2)
    w = rng.normal(size=(4, 2))
    states, _, _ = lqr_rollout(p, x0, sol.K, sol.k, noise=w)
    det, _, _ = lqr_rollout(p, x0, sol.K, sol.k)
    # the state deviation is driven by w through the closed-loop matrices only
    dx = np.zeros(2)
    for t in range(4):
        dx = (p.F[t, :, :2] + p.F[t, :, 2:] @ sol.K[t]) @ dx + w[t]
        np.testing.assert_allclose(states[t + 1] - det[t + 1], dx, atol=1e-12)
    batch = lqr_rollout(p, x0, sol.K, sol.k, noise=np.stack([w, 0 * w]))[0]
    assert batch.shape == (2, 5, 2)
    np.testing.assert_allclose(batch[0], states)
    np.testing.assert_allclose(batch[1], det)
    a = lqr_rollout(p, x0, sol.K, sol.k, noise=True, rng=0)[2]
    b = lqr_rollout(p, x0, sol.K, sol.k, noise=True, rng=np.random.default_rng(0))[2]
    assert a == b


# --------------------------------------------------------------------------------------
# Errors and regularisation
# --------------------------------------------------------------------------------------


def negative_R_problem(T=5):
    A, B = np.array([[1.0, 0.1], [0.0, 1.0]]), np.array([[0.0], [0.1]])
    return time_invariant_lqr(A, B, np.eye(2), np.array([[-0.5]]), T)


def test_non_positive_definite_Q_uu_raises_naming_time_step():
    p = negative_R_problem(T=5)
    with pytest.raises(NotPositiveDefiniteError, match=r"not positive definite at time step t=4 of T=5") as info:
        lqr_backward(p)
    assert isinstance(info.value, ConfigError)
    assert info.value.t == 4 and info.value.min_eig == pytest.approx(-0.5)
    assert "\n" not in str(info.value) and "reg > 0" in str(info.value)


def test_singular_Q_uu_raises():
    A, B = np.eye(2), np.array([[1.0], [0.0]])
    with pytest.raises(NotPositiveDefiniteError, match="t=2"):
        lqr_backward(time_invariant_lqr(A, B, np.eye(2), np.zeros((1, 1)), 3))


def test_reg_gives_finite_gains_and_exact_value_of_the_regularised_controller():
    p = negative_R_problem(T=5)
    sol = lqr_backward(p, reg=1.0)
    for arr in (sol.K, sol.k, sol.V, sol.v, sol.const):
        assert np.isfinite(arr).all()
    assert (np.linalg.eigvalsh(sol.Q_uu + 1.0 * np.eye(1)) > 0).all()
    # V, v, const evaluate the returned controller exactly, even though it is not optimal
    x0 = np.random.default_rng(0).normal(size=(20, 2))
    np.testing.assert_allclose(lqr_rollout(p, x0, sol.K, sol.k)[2], sol.cost_to_go(x0), rtol=1e-9)
    with pytest.raises(NotPositiveDefiniteError, match=r"\+ reg\*I is not positive definite.*reg=0.1\): increase reg"):
        lqr_backward(p, reg=0.1)


def test_reg_is_levenberg_marquardt_on_Q_uu():
    rng = np.random.default_rng(9)
    p = random_problem(rng, T=3, n=2, m=2)
    sol, solr = lqr_backward(p), lqr_backward(p, reg=0.7)
    # at the last step Q_uu does not depend on later gains: k_{T-1} = -(Q_uu + reg I)^{-1} q_u
    np.testing.assert_allclose(solr.k[-1], -np.linalg.solve(sol.Q_uu[-1] + 0.7 * np.eye(2), sol.q_u[-1]))
    with pytest.raises(ConfigError, match="reg"):
        lqr_backward(p, reg=-1.0)
    with pytest.raises(ConfigError, match="reg"):
        lqr_backward(p, reg=float("nan"))


@pytest.mark.parametrize(
    "field, value, pattern",
    [
        ("f", np.zeros((4, 3)), r"^f must have shape \(T, n\) = \(4, 2\), got \(4, 3\)$"),
        ("f", np.zeros((3, 2)), r"^f must have shape"),
        ("C", np.zeros((4, 3, 2)), r"^C must have shape \(T, n\+m, n\+m\) = \(4, 3, 3\), got \(4, 3, 2\)$"),
        ("c", np.zeros(3), r"^c must have shape \(T, n\+m\)"),
        ("C_final", np.zeros((3, 3)), r"^C_final must have shape \(n, n\) = \(2, 2\)"),
        ("c_final", np.zeros(3), r"^c_final must have shape \(n,\) = \(2,\)"),
        ("Sigma", np.zeros((3, 3)), r"^Sigma must have shape \(n, n\) = \(2, 2\)"),
        ("Sigma", np.zeros((5, 2, 2)), r"^Sigma must have shape \(T, n, n\) = \(4, 2, 2\)"),
        ("Sigma", -np.eye(2), r"^Sigma must be positive semi-definite"),
        ("F", np.zeros((4, 2, 2)), r"^F must have shape \(T, n, n\+m\)"),
        ("F", np.full((4, 2, 3), np.nan), r"^F contains NaN or inf$"),
        ("c", np.full((4, 3), np.inf), r"^c contains NaN or inf$"),
    ],
)
def test_problem_validation_names_the_array(field, value, pattern):
    rng = np.random.default_rng(0)
    p = random_problem(rng, T=4, n=2, m=1)
    kwargs = dict(F=p.F, f=p.f, C=p.C, c=p.c, C_final=p.C_final, c_final=p.c_final, Sigma=None)
    kwargs[field] = value
    with pytest.raises(ValueError, match=pattern):
        LQRProblem(**kwargs)


def test_rollout_and_helper_validation_names_the_array():
    rng = np.random.default_rng(0)
    p = random_problem(rng, T=4, n=2, m=1)
    sol = lqr_backward(p)
    with pytest.raises(ValueError, match=r"^x0 must have shape"):
        lqr_rollout(p, np.zeros(3), sol.K, sol.k)
    with pytest.raises(ValueError, match=r"^K must have shape \(T, m, n\) = \(4, 1, 2\), got \(4, 2, 1\)$"):
        lqr_rollout(p, np.zeros(2), np.zeros((4, 2, 1)), sol.k)
    with pytest.raises(ValueError, match=r"^k must have shape \(T, m\)"):
        lqr_rollout(p, np.zeros(2), sol.K, np.zeros(4))
    with pytest.raises(ValueError, match=r"^noise must have shape"):
        lqr_rollout(p, np.zeros(2), sol.K, sol.k, noise=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="Sigma"):
        lqr_rollout(p, np.zeros(2), sol.K, sol.k, noise=True)
    A, B, Q, R = double_integrator()
    with pytest.raises(ValueError, match=r"^B must have shape \(n, m\) = \(2, \?\)"):
        time_invariant_lqr(A, B.T, Q, R, 5)
    with pytest.raises(ValueError, match=r"^R must have shape \(m, m\) = \(1, 1\)"):
        time_invariant_lqr(A, B, Q, np.eye(2), 5)
    with pytest.raises(ValueError, match=r"^Q_final must have shape"):
        time_invariant_lqr(A, B, Q, R, 5, Q_final=np.eye(3))
    with pytest.raises(ValueError, match="horizon"):
        time_invariant_lqr(A, B, Q, R, 0)


def test_time_invariant_helper_layout_and_symmetrisation():
    A, B, Q, R = random_system(5, n=3, m=2)
    N, q, r, d = np.ones((3, 2)), np.arange(3.0), -np.ones(2), np.full(3, 0.5)
    p = time_invariant_lqr(A, B, Q, R, 4, N=N, q=q, r=r, d=d)
    assert (p.T, p.n, p.m) == (4, 3, 2)
    np.testing.assert_array_equal(p.F[2], np.hstack([A, B]))
    np.testing.assert_array_equal(p.f[3], d)
    np.testing.assert_allclose(p.C[1], np.block([[Q, N], [N.T, R]]))
    np.testing.assert_array_equal(p.c[0], np.concatenate([q, r]))
    np.testing.assert_array_equal(p.C_final, 0.0)
    # a non-symmetric C defines the same cost as its symmetric part
    rng = np.random.default_rng(1)
    base = random_problem(rng, T=3, n=2, m=1)
    skew = rng.normal(size=(3, 3, 3))
    skew = skew - np.swapaxes(skew, 1, 2)
    p2 = LQRProblem(base.F, base.f, base.C + skew, base.c, base.C_final, base.c_final)
    np.testing.assert_allclose(lqr_backward(p2).K, lqr_backward(base).K, rtol=1e-12)


def test_overflow_is_reported_not_returned():
    A = np.array([[1e30]])
    p = time_invariant_lqr(A, np.array([[0.0]]), np.eye(1), np.eye(1), 30)
    with pytest.raises(NonFiniteError, match=r"overflowed at time step t=\d+ of T=30"):
        lqr_backward(p)
    with pytest.raises(NonFiniteError, match="rollout diverged"):
        lqr_rollout(p, np.ones(1), np.zeros((30, 1, 1)), np.zeros((30, 1)))


def test_runtime_budget():
    start = time.perf_counter()
    A, B, Q, R = random_system(0)
    lqr_backward(time_invariant_lqr(A, B, Q, R, 1000))
    assert time.perf_counter() - start < 2.0
