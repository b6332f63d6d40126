"""Tests for deeprl.planning.shooting: random shooting, CEM, MPPI and rollout_cost.

References are closed-form: the minimiser of a shifted quadratic, Rosenbrock's (1, 1), the
nearest-of-N-uniform-points law ``E[min_i |U_i - a*|] = 1/(N+1)`` on [-1, 1] (interior a*,
away from the edges) and its ``N^(-1/d)`` scaling in ``d`` dimensions, and a hand-unrolled
double integrator.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from deeprl.core.errors import ConfigError, NonFiniteError
from deeprl.planning.shooting import CEM, MPPI, RandomShooting, rollout_cost, trajectory_objective

STAR = np.array([[0.3, -0.7], [1.2, 0.5], [-0.4, 0.9]])  # (H, m) = (3, 2), inside [-2, 2]


def quadratic(actions: np.ndarray) -> np.ndarray:
    """``sum((a - a*)^2)`` per candidate: (N, H, m) -> (N,)."""
    return ((actions - STAR) ** 2).sum(axis=(1, 2))


def rosenbrock(actions: np.ndarray) -> np.ndarray:
    """2-D Rosenbrock on the flattened sequence (H*m = 2); minimum 0 at (1, 1)."""
    z = actions.reshape(actions.shape[0], -1)
    x, y = z[:, 0], z[:, 1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


# --------------------------------------------------------------------------------------
# CEM and MPPI find known minimisers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cem_minimises_shifted_quadratic(seed):
    cem = CEM(500, 50, 50, lower=-2, upper=2, alpha=0.1, rng=seed)
    mean = cem.optimize(quadratic, np.zeros((3, 2)))
    assert mean.shape == (3, 2)
    assert np.abs(mean - STAR).max() < 1e-3
    assert cem.info.best_costs.shape == (50,) and cem.info.num_evaluations == 50 * 500


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mppi_minimises_shifted_quadratic(seed):
    mppi = MPPI(500, 100, temperature=1e-3, noise_std=0.02, lower=-2, upper=2, rng=seed)
    mean = mppi.optimize(quadratic, np.zeros((3, 2)))
    assert mean.shape == (3, 2)
    assert np.abs(mean - STAR).max() < 1e-2


@pytest.mark.parametrize("shape", [(1, 2), (2, 1)])  # H*m = 2, either way round
@pytest.mark.parametrize("seed", [0, 1])
def test_cem_rosenbrock(shape, seed):
    # min_std keeps the diagonal Gaussian from collapsing in the curved valley (without it CEM
    # stalls ~0.6 away from (1, 1)).
    cem = CEM(500, 50, 300, lower=-2, upper=2, alpha=0.1, min_std=0.01, rng=seed)
    mean = cem.optimize(rosenbrock, np.zeros(shape))
    assert mean.shape == shape
    assert np.abs(mean.ravel() - 1.0).max() < 0.05


def test_cem_without_min_std_stalls_on_rosenbrock():
    """Documents why the Rosenbrock test uses min_std (and that the tolerance is not vacuous)."""
    cem = CEM(500, 50, 300, lower=-2, upper=2, alpha=0.1, min_std=0.0, rng=0)
    assert np.abs(cem.optimize(rosenbrock, np.zeros((1, 2))).ravel() - 1.0).max() > 0.05


@pytest.mark.parametrize("shape", [(1, 2), (2, 1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_mppi_rosenbrock(shape, seed):
    mppi = MPPI(500, 200, temperature=0.01, noise_std=0.05, lower=-2, upper=2, rng=seed)
    mean = mppi.optimize(rosenbrock, np.zeros(shape))
    assert np.abs(mean.ravel() - 1.0).max() < 0.05


# --------------------------------------------------------------------------------------
# Random shooting: nearest-of-N scaling
# --------------------------------------------------------------------------------------

NS = [10, 100, 1000, 10000]


def _mean_shooting_error(shape, n, seeds=200):
    star = np.full(shape, 0.2)

    def objective(a):
        return ((a - star) ** 2).sum(axis=(1, 2))

    errs = [np.linalg.norm(RandomShooting(n, -1, 1, rng=s).optimize(objective, np.zeros(shape)) - star)
            for s in range(seeds)]
    return float(np.mean(errs))


@pytest.mark.parametrize("shape", [(1, 1), (2, 1), (1, 3)])
def test_random_shooting_error_scales_like_n_to_minus_one_over_d(shape):
    d = shape[0] * shape[1]
    errors = np.array([_mean_shooting_error(shape, n) for n in NS])
    assert (np.diff(errors) < 0).all(), errors
    slope = np.polyfit(np.log(NS), np.log(errors), 1)[0]
    assert abs(slope - (-1.0 / d)) < 0.1, (slope, -1.0 / d)
    if d == 1:  # exact constant: P(min distance > r) = (1 - r)^N on [-1, 1] -> E = 1/(N+1)
        np.testing.assert_allclose(errors, 1.0 / (np.array(NS) + 1), rtol=0.15)


def test_random_shooting_samples_in_box_and_returns_argmin():
    seen = []

    def objective(a):
        seen.append(a.copy())
        return quadratic(a)

    lower, upper = np.array([-1.0, 0.0]), np.array([0.5, 2.0])  # per action dimension (m,)
    rs = RandomShooting(1000, lower, upper, rng=0)
    best = rs.optimize(objective, np.zeros((3, 2)))
    batch = seen[0]
    assert batch.shape == (1000, 3, 2)
    assert (batch >= lower).all() and (batch <= upper).all()
    np.testing.assert_array_equal(best, batch[np.argmin(quadratic(batch))])
    assert rs.info.best_cost == pytest.approx(quadratic(best[None])[0])


# --------------------------------------------------------------------------------------
# Bounds, monotone best-so-far, maximise, torch
# --------------------------------------------------------------------------------------


def test_cem_mean_respects_bounds_when_optimum_outside():
    lower, upper = -0.5, 0.5  # STAR has entries outside: the box optimum is STAR clipped
    seen = []

    def objective(a):
        seen.append(a.copy())
        return quadratic(a)

    cem = CEM(300, 30, 40, lower=lower, upper=upper, alpha=0.1, rng=0)
    mean = cem.optimize(objective, np.full((3, 2), 3.0))  # initial guess outside the box too
    assert len(seen) == 40
    assert all((b >= lower).all() and (b <= upper).all() for b in seen)
    assert (mean >= lower).all() and (mean <= upper).all()
    # From the box's centre it converges to the box-constrained optimum, STAR clipped. (From
    # the corner above, the std collapses before the mean crosses the box: CEM is local.)
    mean = cem.optimize(objective, np.zeros((3, 2)))
    assert (mean >= lower).all() and (mean <= upper).all()
    np.testing.assert_allclose(mean, np.clip(STAR, lower, upper), atol=1e-3)


def test_cem_best_so_far_is_non_increasing_and_matches_best_actions():
    cem = CEM(100, 10, 30, lower=-2, upper=2, alpha=0.5, rng=0)
    cem.optimize(rosenbrock, np.zeros((2, 1)))
    info = cem.info
    assert (np.diff(info.best_so_far) <= 0).all()
    np.testing.assert_array_equal(info.best_so_far, np.minimum.accumulate(info.best_costs))
    assert info.best_so_far[-1] < info.best_so_far[0]
    assert info.best_cost == pytest.approx(rosenbrock(info.best_actions[None])[0])
    assert info.best_cost == info.best_so_far[-1]
    assert CEM(100, 10, 30, lower=-2, upper=2, alpha=0.5, rng=0, return_best=True).optimize(
        rosenbrock, np.zeros((2, 1))).tolist() == info.best_actions.tolist()


def test_mppi_low_temperature_is_argmin_high_is_average():
    batch_seen = []

    def objective(a):
        batch_seen.append(a.copy())
        return quadratic(a)

    cold = MPPI(50, 1, temperature=1e-12, noise_std=0.3, rng=0).optimize(objective, np.zeros((3, 2)))
    np.testing.assert_allclose(cold, batch_seen[-1][np.argmin(quadratic(batch_seen[-1]))])
    hot = MPPI(50, 1, temperature=1e12, noise_std=0.3, rng=0).optimize(objective, np.zeros((3, 2)))
    np.testing.assert_allclose(hot, batch_seen[-1].mean(axis=0))


def test_maximize_flag_and_torch_objective():
    def returns(a):  # torch in, torch out: higher is better
        return -torch.as_tensor(quadratic(a))

    cem = CEM(500, 50, 50, lower=-2, upper=2, rng=0, maximize=True)
    mean = cem.optimize(returns, torch.zeros(3, 2))
    assert np.abs(mean - STAR).max() < 1e-3
    assert (np.diff(cem.info.best_so_far) >= 0).all()  # reported in the objective's units
    assert cem.info.best_cost <= 0 and cem.info.best_cost > -1e-4


def test_nan_costs_are_worst_and_all_nan_raises():
    def some_nan(a):
        c = quadratic(a)
        c[::2] = np.nan
        return c

    rs = RandomShooting(100, -2, 2, rng=0)
    assert np.isfinite(rs.optimize(some_nan, np.zeros((3, 2)))).all()
    assert np.isfinite(rs.info.best_cost)
    with pytest.raises(NonFiniteError):
        rs.optimize(lambda a: np.full(a.shape[0], np.nan), np.zeros((3, 2)))


# --------------------------------------------------------------------------------------
# rollout_cost and planning a double integrator
# --------------------------------------------------------------------------------------

DT = 0.1


def point_mass(x, u):
    """1-D double integrator: state (position, velocity), action acceleration; (N, 2), (N, 1)."""
    p, v, a = x[:, 0], x[:, 1], u[:, 0]
    return np.stack([p + DT * v + 0.5 * DT**2 * a, v + DT * a], axis=1)


def stage_cost(x, u):
    return (x[:, 0] - 1.0) ** 2 + 0.1 * x[:, 1] ** 2 + 1e-3 * u[:, 0] ** 2


def terminal(x):
    return 100.0 * ((x[:, 0] - 1.0) ** 2 + x[:, 1] ** 2)


def test_rollout_cost_matches_hand_unrolled_loop():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(4, 5, 1))
    x0s = rng.normal(size=(4, 2))
    expected = []
    for acts, x0 in zip(actions, x0s):
        p, v, total = x0[0], x0[1], 0.0
        for (a,) in acts:
            total += (p - 1) ** 2 + 0.1 * v**2 + 1e-3 * a**2
            p, v = p + DT * v + 0.5 * DT**2 * a, v + DT * a
        expected.append(total + 100 * ((p - 1) ** 2 + v**2))
    np.testing.assert_allclose(rollout_cost(point_mass, stage_cost, x0s, actions, terminal), expected)
    shared = rollout_cost(point_mass, stage_cost, x0s[0], actions)  # (n,) start, no terminal cost
    assert shared.shape == (4,)
    np.testing.assert_allclose(shared, rollout_cost(point_mass, stage_cost, np.repeat(x0s[:1], 4, 0), actions))
    assert shared[0] == pytest.approx(expected[0] - terminal(_simulate(x0s[0], actions[0])[None])[0])
    with pytest.raises(ValueError, match="x0"):
        rollout_cost(point_mass, stage_cost, np.zeros((3, 2)), actions)


def _simulate(x, actions):
    for u in actions:
        x = point_mass(x[None], u[None])[0]
    return x


def test_cem_plans_point_mass_to_goal_open_loop():
    objective = trajectory_objective(point_mass, stage_cost, np.zeros(2), terminal)
    plan = CEM(500, 50, 60, lower=-1, upper=1, alpha=0.1, rng=0).optimize(objective, np.zeros((30, 1)))
    assert (np.abs(plan) <= 1).all()
    p, v = _simulate(np.zeros(2), plan)
    assert abs(p - 1.0) < 0.02 and abs(v) < 0.02
    assert abs(_simulate(np.zeros(2), np.zeros((30, 1)))[0] - 1.0) == 1.0  # doing nothing fails


def test_mppi_receding_horizon_mpc_reaches_goal():
    mppi = MPPI(200, 5, temperature=0.1, noise_std=0.3, lower=-1, upper=1, rng=0)
    x, plan = np.zeros(2), np.zeros((20, 1))
    for _ in range(40):  # replan from the current state, warm-started with the shifted plan
        plan = mppi.optimize(trajectory_objective(point_mass, stage_cost, x, terminal), plan)
        x = point_mass(x[None], plan[None, 0])[0]
        plan = np.concatenate([plan[1:], np.zeros((1, 1))])
    assert abs(x[0] - 1.0) < 0.05 and abs(x[1]) < 0.1


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, match", [
    (lambda: CEM(10, 11, 5, -1, 1), "num_elites must be <= num_samples"),
    (lambda: CEM(10, 0, 5, -1, 1), "num_elites"),
    (lambda: CEM(10, 5, 0, -1, 1), "num_iterations"),
    (lambda: CEM(10, 5, 5, -1, 1, alpha=1.0), "alpha"),
    (lambda: CEM(10, 5, 5, -1, 1, init_std=0.0), "init_std"),
    (lambda: CEM(10, 5, 5), "init_std is required"),
    (lambda: CEM(10, 5, 5, 1, -1), "lower must be < upper"),
    (lambda: MPPI(10, 5, temperature=0.0, noise_std=1.0), "temperature must be > 0"),
    (lambda: MPPI(10, 5, temperature=-1.0, noise_std=1.0), "temperature"),
    (lambda: MPPI(10, 5, temperature=1.0, noise_std=-1.0), "noise_std"),
    (lambda: MPPI(10, 5, temperature=1.0, noise_std=1.0, lower=0, upper=0), "lower must be < upper"),
    (lambda: MPPI(10, 5, temperature=1.0, noise_std=1.0, lower=0), "both"),
    (lambda: RandomShooting(0, -1, 1), "num_samples"),
    (lambda: RandomShooting(10, None, None), "required"),
    (lambda: RandomShooting(10, -np.inf, 1), "finite"),
    (lambda: RandomShooting(10, -1, 1, rng="seed"), "rng"),
])
def test_invalid_hyperparameters_raise_config_error(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_shape_errors_are_one_line_value_errors():
    cem = CEM(10, 5, 2, lower=np.zeros(3), upper=np.ones(3))  # m = 3 bounds
    with pytest.raises(ValueError, match=r"lower has shape \(3,\).*\(4, 2\)") as exc:
        cem.optimize(quadratic, np.zeros((4, 2)))
    assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match=r"initial_guess must have shape \(H, m\)"):
        cem.optimize(quadratic, np.zeros(6))
    with pytest.raises(ValueError, match=r"objective must return costs of shape"):
        CEM(10, 5, 2, -1, 1).optimize(lambda a: np.zeros((a.shape[0], 2)), np.zeros((3, 2)))
