"""Tests for deeprl.planning.ilqr and deeprl.envs.dynamics.

References are independent of the code under test: lqr_backward/lqr_rollout on the exact LQ
problem, Gymnasium's own Pendulum-v1 / CartPole-v1 step functions, and finite differences vs
autograd.
"""
from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from deeprl.envs.dynamics import (
    cartpole_swingup_cost,
    cartpole_swingup_step,
    pendulum_cost,
    pendulum_cost_smooth,
    pendulum_step,
)
from deeprl.planning import lqr_backward, lqr_cost, lqr_rollout, time_invariant_lqr
from deeprl.planning.ilqr import ilqr, linearize_dynamics, quadratize_cost


def _wrap(th):
    return (th + np.pi) % (2 * np.pi) - np.pi


# --------------------------------------------------------------------------------------
# Linear-quadratic problem: one Newton step is exact
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("linearize", ["autograd", "finite_differences"])
def test_lq_problem_converges_in_one_iteration_to_lqr(linearize):
    rng = np.random.default_rng(0)
    n, m, T = 3, 2, 15
    A = np.eye(n) + 0.1 * rng.normal(size=(n, n))
    B = rng.normal(size=(n, m))
    d = 0.1 * rng.normal(size=n)
    a = rng.normal(size=(n, n))
    Q = a @ a.T / n + 0.1 * np.eye(n)
    R = np.diag([0.5, 1.5])
    N = 0.05 * rng.normal(size=(n, m))
    q, r = rng.normal(size=n), rng.normal(size=m)
    Qf = 3 * np.eye(n)
    qf = rng.normal(size=n)
    prob = time_invariant_lqr(A, B, Q, R, T, N=N, q=q, r=r, d=d, Q_final=Qf, q_final=qf)
    x0 = rng.normal(size=n)
    sol = lqr_backward(prob)
    X_ref, U_ref, J_ref = lqr_rollout(prob, x0, sol.K, sol.k)

    tA, tB, td = (torch.from_numpy(v) for v in (A, B, d))
    Cz = torch.from_numpy(prob.C[0])
    cz = torch.from_numpy(prob.c[0])
    tQf, tqf = torch.from_numpy(Qf), torch.from_numpy(qf)

    def dyn(x, u):
        return x @ tA.T + u @ tB.T + td

    def cost(x, u):
        z = torch.cat([x, u], 1)
        return 0.5 * torch.einsum("bi,ij,bj->b", z, Cz, z) + z @ cz

    def final(x):
        return 0.5 * torch.einsum("bi,ij,bj->b", x, tQf, x) + x @ tqf

    U0 = rng.normal(size=(T, m))
    res = ilqr(dyn, cost, final, x0, U0, reg_init=0.0, linearize=linearize, max_iter=10, tol=1e-9)
    assert res.converged
    assert res.statuses == ["accepted"] and res.alphas[0] == 1.0
    assert len(res.costs) == 2
    J0 = float(lqr_cost(prob, lqr_rollout(prob, x0, np.zeros((T, m, n)), U0)[0], U0))
    assert res.costs[0] == pytest.approx(J0, rel=1e-10)
    tol = 1e-9 if linearize == "autograd" else 1e-5
    np.testing.assert_allclose(res.U, U_ref, atol=tol)
    np.testing.assert_allclose(res.X, X_ref, atol=tol)
    assert res.cost == pytest.approx(float(J_ref), rel=tol)
    np.testing.assert_allclose(res.K, sol.K, atol=tol)  # gains at the optimum = LQR gains


# --------------------------------------------------------------------------------------
# Derivatives and the analytic dynamics
# --------------------------------------------------------------------------------------


def test_autograd_and_finite_difference_derivatives_agree():
    rng = np.random.default_rng(1)
    B = 64
    # Pendulum: speeds small enough that the 8 rad/s clip is inactive; torques inside +-2.
    Xp = np.stack([rng.uniform(-np.pi, np.pi, B), rng.uniform(-3, 3, B)], 1)
    Up = rng.uniform(-1.9, 1.9, (B, 1))
    Xc = np.stack([rng.uniform(-2, 2, B), rng.uniform(-2, 2, B), rng.uniform(-np.pi, np.pi, B),
                   rng.uniform(-3, 3, B)], 1)
    Uc = rng.uniform(-9, 9, (B, 1))
    for dyn, cost, X, U in [(pendulum_step, pendulum_cost_smooth, Xp, Up),
                            (cartpole_swingup_step, cartpole_swingup_cost, Xc, Uc)]:
        Fa = linearize_dynamics(dyn, X, U, method="autograd")
        Ff = linearize_dynamics(dyn, X, U, method="finite_differences")
        assert Fa.shape == (B, X.shape[1], X.shape[1] + 1)
        assert np.abs(Fa).max() > 0.5  # not trivially zero
        np.testing.assert_allclose(Fa, Ff, atol=1e-5)
        ga, Ha = quadratize_cost(cost, X, U, method="autograd")
        gf, Hf = quadratize_cost(cost, X, U, method="finite_differences")
        np.testing.assert_allclose(ga, gf, atol=1e-5)
        np.testing.assert_allclose(Ha, Hf, atol=1e-5)
    # The pendulum Jacobian against the hand-derived one: d theta_dot'/d theta = 15 cos(theta) dt.
    Fa = linearize_dynamics(pendulum_step, Xp, Up)
    np.testing.assert_allclose(Fa[:, 1, 0], 15 * np.cos(Xp[:, 0]) * 0.05, atol=1e-12)
    np.testing.assert_allclose(Fa[:, 1, 2], 3 * 0.05, atol=1e-12)


def test_pendulum_step_matches_gymnasium():
    rng = np.random.default_rng(2)
    env = gym.make("Pendulum-v1")
    env.reset(seed=0)
    xs, us, refs, costs = [], [], [], []
    for _ in range(200):
        # states beyond the speed limit and controls beyond the torque limit exercise the clips
        x = np.array([rng.uniform(-2 * np.pi, 2 * np.pi), rng.uniform(-8, 8)])
        u = rng.uniform(-2.5, 2.5, size=1).astype(np.float32)
        env.unwrapped.state = x.copy()
        _, reward, *_ = env.step(u)
        xs.append(x), us.append(u.astype(np.float64)), refs.append(np.array(env.unwrapped.state))
        costs.append(-reward)
    pred = pendulum_step(torch.tensor(np.array(xs)), torch.tensor(np.array(us))).numpy()
    # the env multiplies the float32 torque in float32 (NumPy 2 promotion): ~1e-8 differences
    np.testing.assert_allclose(pred, np.array(refs), rtol=0, atol=1e-6)
    assert np.abs(pred[:, 1]).max() == pytest.approx(8.0)  # the speed clip was exercised
    c = pendulum_cost(torch.tensor(np.array(xs)), torch.clamp(torch.tensor(np.array(us)), -2, 2)).numpy()
    np.testing.assert_allclose(c, np.array(costs), rtol=1e-5, atol=1e-5)
    env.close()


def test_cartpole_step_matches_gymnasium_at_plus_minus_force_mag():
    rng = np.random.default_rng(3)
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    for _ in range(50):
        x = np.array([rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(-0.2, 0.2), rng.uniform(-2, 2)])
        action = int(rng.integers(2))
        env.unwrapped.state = x.copy()
        env.unwrapped.steps_beyond_terminated = None
        env.step(action)
        u = torch.tensor([[10.0 if action == 1 else -10.0]], dtype=torch.float64)
        pred = cartpole_swingup_step(torch.tensor(x[None]), u).numpy()[0]
        np.testing.assert_allclose(pred, env.unwrapped.state, atol=1e-12)
    env.close()


# --------------------------------------------------------------------------------------
# Pendulum swing-up
# --------------------------------------------------------------------------------------


def _pendulum_dyn(x, u):
    # The planner keeps u in [-2, 2] itself (u_bounds), so the torque clip is the identity.
    return pendulum_step(x, u, clip_torque=False)


def _final(x):
    return 10.0 * pendulum_cost_smooth(x)


def _run_in_gym(res, closed_loop: bool) -> np.ndarray:
    """Execute the plan in Pendulum-v1 from hanging down; returns the final [theta, theta_dot]."""
    env = gym.make("Pendulum-v1", max_episode_steps=10_000)
    obs, _ = env.reset(seed=0)
    env.unwrapped.state = np.array([np.pi, 0.0])
    obs = np.array([-1.0, 0.0, 0.0])
    for t in range(res.U.shape[0]):
        th = np.arctan2(obs[1], obs[0])
        th = res.X[t, 0] + _wrap(th - res.X[t, 0])  # unwrap next to the plan
        u = res.control(t, np.array([th, obs[2]])) if closed_loop else res.U[t]
        obs, *_ = env.step(np.clip(u, -2, 2).astype(np.float32))
    state = np.array(env.unwrapped.state)
    env.close()
    return state


def test_ilqr_swings_up_pendulum_in_gymnasium():
    T = 150
    start = time.perf_counter()
    res = ilqr(_pendulum_dyn, pendulum_cost_smooth, _final, np.array([np.pi, 0.0]), np.ones((T, 1)),
               max_iter=200, reg_factor=4.0, u_bounds=(-2.0, 2.0), psd_cost=True)
    wall = time.perf_counter() - start
    # cost decreases on every accepted iteration (and only accepted ones are recorded)
    assert res.accepted.sum() == len(res.costs) - 1 >= 10
    assert np.all(np.diff(res.costs) < 0)
    assert res.cost < 0.6 * res.costs[0]
    assert np.abs(res.U).max() <= 2.0
    assert abs(_wrap(res.X[-1, 0])) < 0.05
    # closed loop (u = U_t + K_t (x - X_t)) is required; open loop drifts off the unstable
    # upright equilibrium (the env rounds actions to float32), so it is only reported
    final = _run_in_gym(res, closed_loop=True)
    assert abs(_wrap(final[0])) < 0.1, final
    open_loop = _run_in_gym(res, closed_loop=False)
    print(f"\nswing-up: {res.n_iter} iterations ({res.accepted.sum()} accepted), cost "
          f"{res.costs[0]:.1f} -> {res.cost:.2f}, final angle {_wrap(res.X[-1, 0]):.4f}, "
          f"gym closed-loop {_wrap(final[0]):.4f} (open-loop {_wrap(open_loop[0]):.4f}), {wall:.2f}s, {res.message}")


def test_nonconvex_pendulum_recovers_through_regularisation():
    """Exact cost Hessians: 2(1 - cos theta) is concave near the bottom, so Q_uu is indefinite,
    lqr_backward raises, and iLQR must raise reg and still make progress."""
    T = 100
    res = ilqr(_pendulum_dyn, pendulum_cost_smooth, _final, np.array([np.pi, 0.0]), np.ones((T, 1)),
               max_iter=40, reg_init=0.0, reg_factor=4.0, u_bounds=(-2.0, 2.0))
    st = res.statuses
    assert st[0] == "not_pd"  # the first backward pass fails at reg = 0 ...
    i = st.index("accepted")
    assert np.all(np.diff(res.regs[: i + 1]) > 0)  # ... reg grows until a step is accepted
    assert st.count("accepted") >= 10
    assert np.all(np.diff(res.costs) < 0)
    assert res.cost < 0.95 * res.costs[0]


def test_scalar_nonconvex_problem_recovers_and_reaches_local_minimum():
    """x' = x + u, running cost 0.05 x^2 + (u^2 - 1)^2 / 4: at u = 0.1 the u-curvature is
    3u^2 - 1 < 0 at the last step, so reg = 0 fails; the solution must sit in a convex basin."""
    T = 5

    def dyn(x, u):
        return x + u

    def cost(x, u):
        return 0.05 * x[:, 0] ** 2 + 0.25 * (u[:, 0] ** 2 - 1) ** 2

    res = ilqr(dyn, cost, None, np.array([0.0]), np.full((T, 1), 0.1), reg_init=0.0, reg_factor=10.0,
               max_iter=100, tol=1e-12)
    assert res.statuses[0] == "not_pd" and res.regs[1] > res.regs[0]
    assert res.converged
    assert np.all(np.diff(res.costs) < 0)
    assert np.all(3 * res.U ** 2 - 1 > 0)  # every control in a convex region of the cost
    # a local minimum: the gradient of the total cost in U vanishes (checked by autograd)
    U = torch.tensor(res.U, requires_grad=True)
    x, J = torch.zeros(1, 1, dtype=torch.float64), 0.0
    for t in range(T):
        J = J + cost(x, U[t:t + 1])
        x = dyn(x, U[t:t + 1])
    J.sum().backward()
    assert np.abs(U.grad.numpy()).max() < 1e-4


def test_tanh_bounds_hold_and_improve():
    T = 60
    res = ilqr(_pendulum_dyn, pendulum_cost_smooth, _final, np.array([np.pi - 0.5, 0.0]),
               np.zeros((T, 1)), max_iter=30, u_bounds=(-2.0, 2.0), bound_mode="tanh", psd_cost=True)
    assert np.abs(res.U).max() <= 2.0  # tanh saturates to exactly 1 in float64
    assert np.all(np.diff(res.costs) < 0) and res.cost < 0.95 * res.costs[0]
