"""ModelEnv and the batched torch planners: model returns against a row-by-row NumPy rollout of
the same dynamics, termination masking and particle averaging against hand-computed sums,
batched CEM/MPPI/random shooting against the known optima of concave objectives (one per
row), and NaN handling. (Batched MPC's learning tests are in test_planning_agents.py: it is the
default there.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from deeprl.core.errors import ConfigError, NonFiniteError
from deeprl.envs.linear_quadratic import LQ_ID
from deeprl.planning.batched import BatchedPlanner
from deeprl.planning.model_env import AnalyticModelEnv, model_returns
from deeprl.planning.models import known_dynamics


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1", LQ_ID])
def test_model_returns_equal_a_row_by_row_numpy_rollout(env_id):
    kd = known_dynamics(env_id)
    rng = np.random.default_rng(0)
    B, N, H, m, gamma = 3, 5, 7, kd.action_dim, 0.9
    states = rng.normal(size=(B, kd.state_dim)) * 0.3
    plans = rng.uniform(np.maximum(kd.action_low, -1), np.minimum(kd.action_high, 1), size=(B, N, H, m))
    got = model_returns(AnalyticModelEnv(kd), torch.from_numpy(states), torch.from_numpy(plans), gamma).numpy()
    model = kd.model()
    for b in range(B):
        for i in range(N):
            s, total = states[b:b + 1], 0.0
            for t in range(H):
                s, r = model(s, plans[b, i, t][None])
                total += gamma ** t * float(r[0])
            assert got[b, i] == pytest.approx(total, rel=1e-12, abs=1e-12)


class Counter:
    """x' = x + a; reward x' (1-d); terminates once x' >= 3; optional N(0, 1) reward noise."""
    state_dim = action_dim = 1

    def __init__(self, noise=False):
        self.noise, self.gen = noise, torch.Generator().manual_seed(0)

    def step(self, x, a):
        nxt = x + a
        r = nxt[:, 0] + (torch.randn(len(x), generator=self.gen, dtype=x.dtype) if self.noise else 0.0)
        return nxt, r, nxt[:, 0] >= 3


def test_model_returns_stop_at_termination_and_average_particles():
    plans = torch.ones(1, 2, 5, 1, dtype=torch.float64)
    plans[0, 1] = 0.5
    g = model_returns(Counter(), torch.zeros(1, 1, dtype=torch.float64), plans, gamma=1.0)
    # ones: rewards 1, 2, 3 (terminates at 3); halves: 0.5 + 1 + 1.5 + 2 + 2.5 (never reaches 3)
    assert g.tolist() == [[6.0, 7.5]]
    noisy = model_returns(Counter(noise=True), torch.zeros(1, 1, dtype=torch.float64), plans, particles=4000)
    assert noisy[0, 0].item() == pytest.approx(6.0, abs=4 * np.sqrt(3 / 4000))  # 3 noisy rewards each


def _quadratic(targets):
    """Per-row concave objective -(A - target_b)^2 summed: optimum A = target_b."""
    return lambda A: -((A - targets[:, None]) ** 2).sum((2, 3))


@pytest.mark.parametrize("method, H, tol", [("cem", 4, 0.02), ("mppi", 4, 0.1), ("random", 1, 0.1)])
def test_batched_planners_find_each_rows_optimum(method, H, tol):
    """(Random shooting in 2 dimensions: the best of N uniform points is ~N^(-1/d) from the optimum.)"""
    B, m = 3, 2
    targets = torch.tensor([[0.5, -0.5], [0.0, 0.8], [-0.7, 0.2]], dtype=torch.float64)[:, None].expand(B, H, m)
    planner = BatchedPlanner(method, -np.ones(m), np.ones(m), num_samples=500, num_elites=50,
                             num_iterations=1 if method == "random" else 8, alpha=0.1, temperature=0.05,
                             noise_std=0.3, generator=torch.Generator().manual_seed(1))
    plan = planner.plan(_quadratic(targets), torch.zeros(B, H, m, dtype=torch.float64))
    assert plan.shape == (B, H, m)
    assert (plan - targets).abs().max() < tol
    assert torch.allclose(planner.info.best_return, _quadratic(targets)(planner.info.best_actions[:, None])[:, 0])
    if method == "random":  # the best sample is returned
        assert torch.equal(plan, planner.info.best_actions)


def test_nan_returns_are_worst_and_an_all_nan_row_is_refused():
    targets = torch.zeros(2, 3, 1, dtype=torch.float64)
    f = _quadratic(targets)

    def some_nan(A):
        g = f(A)
        g[:, ::2] = torch.nan
        return g

    p = BatchedPlanner("cem", [-1.0], [1.0], num_samples=50, num_elites=5, num_iterations=3,
                       generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(p.plan(some_nan, torch.zeros(2, 3, 1, dtype=torch.float64))).all()
    with pytest.raises(NonFiniteError, match="every candidate"):
        p.plan(lambda A: torch.full(A.shape[:2], torch.nan, dtype=A.dtype), torch.zeros(2, 3, 1, dtype=torch.float64))
    with pytest.raises(ConfigError, match="planner: 'bogus' is not one of random, cem, mppi"):
        BatchedPlanner("bogus", [-1.0], [1.0], num_samples=5)


def test_cem_on_a_linear_quadratic_model_env_finds_the_lqr_optimum():
    """CEM over H controls on the LQ ModelEnv from x0 maximises -sum_t c(x_t, u_t), the
    finite-horizon LQR problem without terminal cost: it must find the Riccati solution's controls."""
    from deeprl.envs.make import make_env
    from deeprl.planning.lqr import lqr_backward, lqr_rollout, time_invariant_lqr

    u = make_env(LQ_ID).unwrapped
    H, x0 = 6, np.array([1.0, -0.5])
    problem = time_invariant_lqr(u.A, u.B, u.Q, u.R, H)
    sol = lqr_backward(problem)
    _, u_star, cost = lqr_rollout(problem, x0, sol.K, sol.k)
    d = known_dynamics(LQ_ID)
    bound = np.full(u.B.shape[1], 2.0)  # (the env's box is unbounded; the optimum lies well inside this one)
    assert np.all(np.abs(u_star) < bound / 2)
    planner = BatchedPlanner("cem", -bound, bound, num_samples=1000, num_elites=100,
                             num_iterations=25, alpha=0.1, generator=torch.Generator().manual_seed(0))
    x = torch.as_tensor(x0)[None]
    plan = planner.plan(lambda A: model_returns(AnalyticModelEnv(d), x, A), torch.zeros(1, H, u.B.shape[1],
                                                                                       dtype=torch.float64))
    np.testing.assert_allclose(plan[0].numpy(), u_star, atol=0.02)
    found = float(model_returns(AnalyticModelEnv(d), x, plan[:, None])[0, 0])
    assert found == pytest.approx(-float(cost), rel=1e-3)
