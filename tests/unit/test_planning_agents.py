"""Planning agents in the real Gymnasium envs: MPC (CEM/MPPI/random shooting) keeps Pendulum
upright and swings it up with the analytic model, iLQR swings it up and holds it within 0.1
rad, LQR is exactly optimal on the LQ env and iLQR agrees with it there; warm starts, custom
models, checkpoints and refusals of unsupported environments."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from deeprl.algos.planning.ilqr import ILQR
from deeprl.algos.planning.lqr import LQR
from deeprl.algos.planning.mpc import MPC, MPCController, make_planner, shift_plan
from deeprl.core.errors import ConfigError
from deeprl.envs.linear_quadratic import LQ_ID
from deeprl.planning.ilqr import ilqr


def wrap(th):
    return (th + np.pi) % (2 * np.pi) - np.pi


def run_pendulum(agent, steps, seed=0, state=None):
    """Angles (wrapped) after each step in the real Pendulum-v1 and the return."""
    env = gym.make("Pendulum-v1", max_episode_steps=10_000)
    obs, _ = env.reset(seed=seed)
    if state is not None:
        env.unwrapped.state = np.array(state, dtype=np.float64)
        obs = np.array([np.cos(state[0]), np.sin(state[0]), state[1]], dtype=np.float32)
    angles, ret = [], 0.0
    for _ in range(steps):
        obs, r, *_ = env.step(agent.predict(obs))
        angles.append(wrap(env.unwrapped.state[0]))
        ret += r
    return np.abs(np.array(angles)), ret


# -- MPC ------------------------------------------------------------------------------------------
def test_mpc_cem_swings_pendulum_up_and_holds_it():
    agent = MPC("Pendulum-v1", seed=0, planner="cem")
    angles, ret = run_pendulum(agent, 130, state=[np.pi, 0.0])
    assert angles[-30:].max() < 0.1, angles[-30:]
    assert agent.clock.actions == 130 and agent.clock.per_action > 0


@pytest.mark.parametrize("batched", [True, False], ids=["torch-batched", "numpy-rows"])
@pytest.mark.parametrize("planner", ["random", "mppi"])
def test_mpc_keeps_pendulum_upright(planner, batched):
    agent = MPC("Pendulum-v1", seed=1, planner=planner, horizon=15, num_samples=100, num_iterations=2,
                batched=batched)
    for seed, state in enumerate(([0.3, -0.5], [-0.4, 1.0])):
        angles, _ = run_pendulum(agent, 40, seed, state)
        assert angles[-10:].max() < 0.1, (planner, angles)


def test_mpc_balances_cartpole_with_discrete_actions():
    agent = MPC("CartPole-v1", seed=0, planner="random", horizon=15, num_samples=100)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        obs, r, term, trunc, _ = env.step(int(agent.predict(obs)))
        total, done = total + r, term or trunc
    assert total == 500


def test_mpc_controller_accepts_any_batched_model_and_shifts_its_plan():
    # a learned-model stand-in: 2-D integrator s' = s + 0.1 a, r = -|s|^2 - 0.01 |a|^2
    def model(s, a):
        s2 = s + 0.1 * a
        return s2, -(s2 ** 2).sum(1) - 0.01 * (a ** 2).sum(1)

    low, high = -np.ones(2), np.ones(2)
    planner = make_planner("cem", low, high, num_samples=100, num_elites=10, num_iterations=3, alpha=0.1,
                           temperature=1.0, noise_std=0.5, rng=0)
    ctl = MPCController(planner, model, horizon=10, low=low, high=high)
    s = np.array([[1.0, -0.5], [-0.3, 0.2]])
    for _ in range(30):
        a = ctl.act(s)
        assert a.shape == (2, 2) and (np.abs(a) <= 1).all()
        plan_before = ctl.plans.copy()
        s = s + 0.1 * a
    assert np.abs(s).max() < 0.05
    np.testing.assert_array_equal(shift_plan(np.arange(6.0).reshape(3, 2), [9, 9]), [[2, 3], [4, 5], [9, 9]])
    assert (plan_before[:, -1] == 0).all()  # the shifted plan ends with the box's middle


# -- iLQR -----------------------------------------------------------------------------------------
def test_ilqr_agent_swings_up_pendulum_within_0_1_rad():
    agent = ILQR("Pendulum-v1", seed=0, horizon=40, replan_every=5, max_iter=30, restart_every_plan=False)
    angles, _ = run_pendulum(agent, 110, state=[np.pi, 0.0])
    assert angles[-20:].max() < 0.1, angles[-30:]
    assert agent.num_plans >= 110 // 5


def test_ilqr_agent_on_the_lq_env_matches_lqr_gains():
    """iLQR on linear dynamics and a quadratic cost is exact LQR: its receding-horizon action
    equals K_0 x of the LQR solution with the same horizon and terminal cost."""
    ilqr_agent = ILQR(LQ_ID, seed=0, horizon=20, replan_every=1, terminal_weight=1.0, psd_cost=False,
                      reg_init=0.0)
    lqr_agent = LQR(LQ_ID, seed=0, horizon=20, time_varying=False)
    obs = np.random.default_rng(0).uniform(-1, 1, size=(4, 2))
    np.testing.assert_allclose(ilqr_agent.predict(obs), lqr_agent.predict(obs), atol=1e-6)


def test_ilqr_refuses_inference_mode_instead_of_returning_zero_derivatives():
    from deeprl.envs.dynamics import pendulum_cost_smooth, pendulum_step

    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        ilqr(pendulum_step, pendulum_cost_smooth, None, np.array([3.0, 0.0]), np.ones((5, 1)))


# -- LQR ------------------------------------------------------------------------------------------
def test_lqr_agent_is_exactly_optimal_on_the_lq_env():
    agent = LQR(LQ_ID, seed=0)
    env = gym.make(LQ_ID)
    for seed in range(3):
        x0, _ = env.reset(seed=seed)
        obs, ret, done = x0, 0.0, False
        while not done:
            obs, r, done, _, _ = env.step(agent.predict(obs))
            ret += r
        np.testing.assert_allclose(-ret, agent.predicted_cost(x0), rtol=1e-5)  # float32 observations


# -- checkpoints and refusals ---------------------------------------------------------------------
def test_planner_checkpoints_round_trip(tmp_path):
    agent = MPC("Pendulum-v1", seed=3, planner="mppi", horizon=5, num_samples=20, num_iterations=1)
    obs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.5]], dtype=np.float32)
    agent.predict(obs)
    agent.save(tmp_path / "mpc.pt")
    loaded = MPC.load(tmp_path / "mpc.pt")
    assert loaded.cfg == agent.cfg and loaded.clock.actions == 2
    np.testing.assert_array_equal(loaded.controller.plans, agent.controller.plans)
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))  # same RNG state, same plans
    lqr = LQR(LQ_ID, seed=0, reg=0.1)
    lqr.save(tmp_path / "lqr.pt")
    x = np.array([0.5, -0.2])
    np.testing.assert_array_equal(LQR.load(tmp_path / "lqr.pt").predict(x), lqr.predict(x))


@pytest.mark.parametrize("cls, env_id, match", [
    (MPC, "MountainCarContinuous-v0", "mpc needs known .analytic. dynamics.*supported: Pendulum-v1, CartPole-v1"),
    (ILQR, "CartPole-v1", "ilqr needs differentiable known dynamics.*supported: Pendulum-v1, deeprl/Linear"),
    (LQR, "Pendulum-v1", "lqr needs a linear-quadratic environment.*supported: deeprl/LinearQuadratic-v0"),
])
def test_unsupported_envs_are_refused(cls, env_id, match):
    with pytest.raises(ConfigError, match=match):
        cls(env_id)
