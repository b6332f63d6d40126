"""Model-based agents: the ensemble learns Pendulum's dynamics, ``mbrl`` (HW4's MBRL v1.5 with
CEM-MPC) controls the pendulum within 1.4k env steps, an interrupted run resumes exactly, and bad
configurations fail with one clear line."""
from __future__ import annotations

import csv
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from deeprl.algos import ALGORITHMS
from deeprl.core.errors import ConfigError, NonFiniteError, SpaceError
from deeprl.data.evaluate import evaluate
from deeprl.models.ensemble import DynamicsEnsemble
from deeprl.models.training import fit_dynamics
from deeprl.runners.train import train

SMALL = dict(initial_steps=400, steps_per_iteration=200, ensemble_size=3, model_hidden_sizes=(64, 64),
             model_max_epochs=30, planner="cem", horizon=15, num_samples=100, num_elites=10, num_iterations=3,
             torch_threads=1, eval_every=0, eval_episodes=0, checkpoint_every=0)


def mbrl(env="Pendulum-v1", seed=0, **kw):
    return ALGORITHMS["mbrl"](env, seed=seed, preset="none", **{**SMALL, **kw})


def _random_transitions(n, seed):
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(seed)
    s, a, s2 = [], [], []
    obs, _ = env.reset(seed=seed)
    for _ in range(n):
        act = rng.uniform(-2, 2, 1).astype(np.float32)
        nxt, _, term, trunc, _ = env.step(act)
        s.append(obs), a.append(act), s2.append(nxt)
        obs = nxt if not (term or trunc) else env.reset(seed=int(rng.integers(1 << 30)))[0]
    return tuple(torch.as_tensor(np.asarray(x), dtype=torch.float32) for x in (s, a, s2))


def test_probabilistic_ensemble_fits_pendulum_dynamics():
    torch.manual_seed(0)
    s, a, s2 = _random_transitions(3000, seed=0)
    ts, ta, ts2 = _random_transitions(500, seed=1)  # held-out episodes
    model = DynamicsEnsemble(3, 1, members=3, hidden=(64, 64), probabilistic=True)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    fit = fit_dynamics(model, opt, s, a, s2, rng=np.random.default_rng(0), max_epochs=60, patience=8)
    with torch.no_grad():
        pred, _ = model.predict(ts, ta, None)
    one_step = float((pred - ts2).pow(2).mean())
    still = float((ts - ts2).pow(2).mean())  # "nothing moves": the baseline to beat
    assert one_step < 2e-3 and one_step < 0.01 * still, (one_step, still, fit.epochs)


def test_mbrl_controls_the_pendulum_within_1400_env_steps():
    agent = mbrl()
    agent.learn(1400)
    ev = evaluate(agent, 3, seed=123)
    # random actions score about -1200; a swing-up and hold about -150
    assert ev["eval/return_mean"] > -400, ev
    assert agent.train_state["env_steps"] == 1400 and len(agent.data) == 1400
    assert 0 < agent.clock.per_action < 0.5


def _rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_mbrl_logs_model_diagnostics_and_resumes_exactly(tmp_path):
    kw = dict(total_steps=1000, checkpoint_every=600, eval_every=600, eval_episodes=1, num_samples=40,
              num_elites=5, num_iterations=2, horizon=8, model_max_epochs=5)
    ref = mbrl(**kw)
    train(ref, run_dir=tmp_path / "ref")
    rows = _rows(tmp_path / "ref")
    assert [int(r["time/env_steps"]) for r in rows] == [400, 600, 800, 1000, 1000]  # + the final evaluation
    last = rows[3]
    for k in ("model/train_loss/m0", "model/val_mse/m2", "model/one_step_mse", "model/5_step_mse",
              "time/per_action_s", "plan/predicted_return", "model/dataset_size"):
        assert last[k] != "" and math.isfinite(float(last[k])), k
    assert float(last["model/dataset_size"]) == 1000

    # interrupted at the 5th iteration (after the checkpoint at 600), then resumed
    agent = mbrl(**kw)
    orig, calls = agent.update, [0]

    def update(*a, **k):
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt
        return orig(*a, **k)

    agent.update = update
    with pytest.raises(KeyboardInterrupt):
        train(agent, run_dir=tmp_path / "run")
    resumed = ALGORITHMS["mbrl"].load(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert resumed.train_state["env_steps"] == 600 and len(resumed.data) == 600
    train(resumed, run_dir=tmp_path / "run")
    got = _rows(tmp_path / "run")
    assert len(got) == len(rows)
    for a, b in zip(rows, got):
        for k in a:
            if k not in ("time/sps", "time/wall_s", "time/per_action_s"):
                assert a[k] == b[k], (a["time/env_steps"], k, a[k], b[k])
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_mbrl_learns_the_reward_when_asked():
    agent = mbrl(learn_reward=True, initial_steps=600, num_samples=20, num_elites=4, horizon=5, model_max_epochs=60)
    agent.learn(600)
    assert agent.model.learn_reward and agent.model_env.reward_fn is None
    s, a = agent.data.obs[:200], agent.data.actions[:200]
    with torch.no_grad():
        _, r = agent.model.predict(s, a, None)
    err = float((r - agent.data.rewards[:200]).abs().mean())
    assert err < 0.15 * float(agent.data.rewards[:200].abs().mean())  # (0.056 measured)


def test_mbrl_bad_configurations_fail_with_one_line():
    with pytest.raises(ConfigError, match=r"no known reward function for 'HalfCheetah-v5'.*learn_reward=true"):
        mbrl("HalfCheetah-v5")
    with pytest.raises(SpaceError, match="mbrl"):
        mbrl("CartPole-v1")
    with pytest.raises(ConfigError, match="normalize_obs"):
        mbrl(normalize_obs=True)
    with pytest.raises(ConfigError, match="num_model_elites"):
        mbrl(num_model_elites=4)
    with pytest.raises(ConfigError, match="propagation"):
        mbrl(propagation="ts2")
    with pytest.raises(ConfigError, match="plan_precision.*float32, bfloat16"):
        mbrl(plan_precision="float16")


@pytest.mark.learning
def test_pets_controls_the_pendulum_within_1400_env_steps():
    """The Pendulum preset (3 Gaussian members, 6 TS-inf particles, CEM), 1400 env steps: 400
    random, then five MPC episodes with a refit before each."""
    agent = ALGORITHMS["pets"]("Pendulum-v1", seed=0, torch_threads=1, eval_every=0, eval_episodes=0,
                               checkpoint_every=0)
    assert agent.cfg.probabilistic and agent.cfg.propagation == "tsinf" and agent.cfg.particles == 6
    agent.learn(1400)
    ev = evaluate(agent, 3, seed=123)
    assert ev["eval/return_mean"] > -400, ev  # random actions: about -1200; swing-up and hold: about -150
    assert agent.train_state["env_steps"] == 1400 and len(agent.data) == 1400


def test_pets_defaults_and_cli_run(tmp_path):
    from deeprl import cli

    cfg = ALGORITHMS["pets"].Config()
    assert cfg.probabilistic and cfg.propagation == "tsinf" and cfg.particles == 20 and cfg.planner == "cem"
    run_dir = tmp_path / "pets"
    rc = cli.main(["train", "pets", "--env", "Pendulum-v1", "--steps", "600", "--run-dir", str(run_dir),
                   "--no-progress", "initial_steps=400", "num_samples=20", "num_elites=4", "num_iterations=2",
                   "horizon=5", "model_max_epochs=3", "eval_every=0", "eval_episodes=1", "torch_threads=1",
                   "plan_precision=bfloat16"])
    assert rc == 0
    rows = _rows(run_dir)
    for r in rows[:2]:  # a fit per iteration, with the probabilistic members' validation NLL, per member
        assert math.isfinite(float(r["model/val_nll"])) and math.isfinite(float(r["model/val_nll/m2"]))  # (preset: 3)
    assert (run_dir / "checkpoints" / "latest.pt").exists() and (run_dir / "learning_curve.png").exists()
    assert cli.main(["eval", str(run_dir), "--episodes", "1"]) == 0
    agent = ALGORITHMS["pets"].load(run_dir / "checkpoints" / "latest.pt")  # the precision travels with the run
    assert agent.cfg.plan_precision == "bfloat16" and agent.model_env.precision == "bfloat16"


# ---------------------------------------------------------------------------------------------
# MBPO
# ---------------------------------------------------------------------------------------------

MBPO_SMALL = dict(learning_starts=300, gradient_steps=2, batch_size=64, hidden_sizes=(32, 32), model_train_freq=100,
                  rollout_batch_size=200, rollout_length=2, ensemble_size=3, num_model_elites=2,
                  model_hidden_sizes=(32, 32), model_max_epochs=3, torch_threads=1, eval_every=0, eval_episodes=0,
                  checkpoint_every=0)


def mbpo(env="InvertedPendulum-v5", seed=0, **kw):
    return ALGORITHMS["mbpo"](env, seed=seed, preset="none", **{**MBPO_SMALL, **kw})


def test_rollout_length_schedule():
    from deeprl.algos.model_based.mbpo import rollout_length_at

    assert [rollout_length_at(t, 1, 15, (1000, 2000)) for t in (0, 1000, 1500, 2000, 9000)] == [1, 1, 8, 15, 15]
    assert rollout_length_at(123, 5, 5, (0, 1)) == 5


def test_model_buffer_is_a_fifo_ring_and_round_trips():
    from deeprl.algos.model_based.mbpo import ModelBuffer

    buf = ModelBuffer(2, 1, capacity=5)
    for start in (0, 3, 6):  # 9 rows into 5 slots: rows 4..8 remain
        rows = torch.arange(start, start + 3, dtype=torch.float32)
        buf.add(rows[:, None].repeat(1, 2), rows[:, None], rows, rows, rows[:, None].repeat(1, 2))
    assert len(buf) == 5 and sorted(buf.rewards.tolist()) == [4, 5, 6, 7, 8]
    obs, act, rew, disc, nxt = buf.sample(100, np.random.default_rng(0))
    assert set(rew.tolist()) <= {4, 5, 6, 7, 8} and torch.equal(obs[:, 0], rew) and torch.equal(act[:, 0], rew)
    twin = ModelBuffer(2, 1, capacity=5)
    twin.load_state_dict(buf.state_dict())
    rows = torch.tensor([9.0])
    for b in (buf, twin):
        b.add(rows[:, None].repeat(1, 2), rows[:, None], rows, rows, rows[:, None].repeat(1, 2))
    assert torch.equal(buf.rewards, twin.rewards) and len(twin) == 5


def test_mbpo_fits_rolls_out_and_mixes_real_and_model_rows():
    agent = mbpo(rollout_length=2)
    seen = []
    orig = agent.sac.update

    def spy(batch, progress):
        seen.append(batch)
        return orig(batch, progress)

    agent.sac.update = spy
    agent.learn(500)
    assert agent.fits == 3  # at 300, 400 and 500 env steps
    assert len(agent.model_buffer) > 0 and len(agent.data) == 500
    # every SAC minibatch after the first fit: ceil(0.05 * 64) = 4 real rows, the rest imagined
    assert all(b.obs.shape[0] == 64 for b in seen) and len(seen) == 2 * (500 - 300)
    assert all(len(b.indices) == 4 for b in seen)
    # imagined transitions follow the known termination: discount 0 exactly where |angle'| > 0.2
    mb = agent.model_buffer
    ended = mb.next_obs[:len(mb), 1].abs() > 0.2
    assert torch.equal(mb.discounts[:len(mb)] == 0, ended)
    assert torch.equal(mb.rewards[:len(mb)], (~ended).float())


def test_mbpo_with_rollout_length_zero_is_sac_on_real_data():
    agent = mbpo(rollout_length=0)
    sizes = []
    orig = agent.sac.update
    agent.sac.update = lambda b, p: (sizes.append(len(b.indices)), orig(b, p))[1]
    agent.learn(400)
    assert len(agent.model_buffer) == 0 and set(sizes) == {64}


def test_mbpo_resumes_exactly(tmp_path):
    kw = dict(total_steps=600, checkpoint_every=400, eval_every=300, eval_episodes=1)
    ref = mbpo(**kw)
    train(ref, run_dir=tmp_path / "ref")
    agent = mbpo(**kw)
    orig, calls = agent.observe, [0]

    def observe(r):
        calls[0] += 1
        if calls[0] == 450:
            raise KeyboardInterrupt
        return orig(r)

    agent.observe = observe
    with pytest.raises(KeyboardInterrupt):
        train(agent, run_dir=tmp_path / "run")
    resumed = ALGORITHMS["mbpo"].load(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert resumed.train_state["env_steps"] == 400 and len(resumed.model_buffer) > 0
    train(resumed, run_dir=tmp_path / "run")
    a, b = _rows(tmp_path / "ref"), _rows(tmp_path / "run")
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for k in x:
            if k not in ("time/sps", "time/wall_s"):
                assert x[k] == y[k], (x["time/env_steps"], k)
    for name, m in ref.modules().items():
        for k, v in m.state_dict().items():
            if isinstance(v, torch.Tensor):
                assert torch.equal(v, resumed.modules()[name].state_dict()[k]), (name, k)


def test_mbpo_stops_on_a_non_finite_imagined_state_and_keeps_the_last_checkpoint(tmp_path):
    """A member that starts predicting NaN after the second fit: the run stops with an error naming
    the imagined step, the member and the quantity, writes no summary, and the checkpoint from
    before still loads (the poisoned weights were never saved)."""
    agent = mbpo(total_steps=800, checkpoint_every=100)
    orig = agent._branched_rollouts

    def poisoned(k):
        if agent.fits == 2:
            with torch.no_grad():
                agent.model.mean_head.bias[agent.elites[0]] = float("nan")
        return orig(k)

    agent._branched_rollouts = poisoned
    with pytest.raises(NonFiniteError, match=r"non-finite next state predicted by member\(s\) \[(\d)\] of the "
                                             r"dynamics ensemble at imagined step \d+ \(\d+ of 200 rows\)") as err:
        train(agent, run_dir=tmp_path)
    assert f"[{agent.elites[0]}]" in str(err.value)
    assert not (tmp_path / "summary.json").exists()
    good = ALGORITHMS["mbpo"].load(tmp_path / "checkpoints" / "latest.pt")
    assert good.train_state["env_steps"] == 300 and good.fits == 1  # the error came at 400, before its checkpoint
    assert all(torch.isfinite(p).all() for p in good.model.parameters())


def test_mbpo_bad_configurations_fail_with_one_line():
    with pytest.raises(ConfigError, match=r"no known reward function for 'Hopper-v5'.*learn_reward=true"):
        mbpo("Hopper-v5")
    with pytest.raises(ConfigError, match="num_model_elites"):
        mbpo(num_model_elites=4)
    with pytest.raises(ConfigError, match="rollout_schedule"):
        mbpo(rollout_schedule=(10, 5))


# ---------------------------------------------------------------------------------------------
# MVE
# ---------------------------------------------------------------------------------------------


class _Drift:
    """A toy ModelEnv: s' = s + a, r = -|s'|^2, terminated when s'_0 > 1."""

    def step(self, s, a):
        s2 = s + a
        return s2, -(s2 ** 2).sum(-1), s2[:, 0] > 1.0


def test_value_expansion_matches_a_brute_force_h_step_return():
    from deeprl.algos.model_based.mve import value_expansion
    from deeprl.data.replay import ReplayBatch

    g = torch.Generator().manual_seed(0)
    B, gamma, H = 6, 0.9, 4
    obs, nxt = torch.rand(B, 2, generator=g), torch.rand(B, 2, generator=g) * 0.8
    rewards = torch.rand(B, generator=g)
    discounts = gamma * torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])  # row 2 ended in the real env
    batch = ReplayBatch(obs, torch.zeros(B, 1), rewards, discounts, nxt, None, np.arange(B))
    policy = lambda x: torch.full_like(x, 0.15)  # noqa: E731
    out = value_expansion(batch, _Drift(), policy, H, gamma)
    for i in range(B):  # one row at a time, in plain Python
        total, d, x = float(rewards[i]), float(discounts[i]), nxt[i].clone()
        for _ in range(H):
            x = x + 0.15
            total += d * float(-(x ** 2).sum())
            d *= gamma * (0.0 if float(x[0]) > 1.0 else 1.0)
        assert float(out.rewards[i]) == pytest.approx(total, rel=1e-6)
        assert float(out.discounts[i]) == pytest.approx(d, abs=1e-7)
        torch.testing.assert_close(out.next_obs[i], x)
    assert float(out.discounts[2]) == 0.0 and float(out.rewards[2]) == pytest.approx(float(rewards[2]))
    assert torch.equal(out.obs, obs)  # the critic's and actor's inputs stay the real ones
    assert value_expansion(batch, _Drift(), policy, 0, gamma).rewards.equal(rewards)


def test_mve_trains_sac_on_expanded_targets_and_resumes(tmp_path):
    kw = dict(MBPO_SMALL, horizon=2, gradient_steps=1, total_steps=500, checkpoint_every=400, eval_every=250,
              eval_episodes=1)
    for k in ("rollout_batch_size", "rollout_length"):
        kw.pop(k)
    ref = ALGORITHMS["mve"]("InvertedPendulum-v5", seed=0, preset="none", **kw)
    seen = []
    orig = ref.sac.update
    ref.sac.update = lambda b, p: (seen.append(b), orig(b, p))[1]
    train(ref, run_dir=tmp_path / "ref")
    assert ref.fits == 3 and len(seen) == 200
    assert all(float(b.discounts.max()) <= 0.99 ** 3 + 1e-6 for b in seen)  # gamma^(1 + H) at most
    assert any(float(b.discounts.min()) == 0.0 for b in seen)  # some expansions end in a termination
    agent = ALGORITHMS["mve"]("InvertedPendulum-v5", seed=0, preset="none", **kw)
    obs_orig, calls = agent.observe, [0]

    def observe(r):
        calls[0] += 1
        if calls[0] == 450:
            raise KeyboardInterrupt
        return obs_orig(r)

    agent.observe = observe
    with pytest.raises(KeyboardInterrupt):
        train(agent, run_dir=tmp_path / "run")
    resumed = ALGORITHMS["mve"].load(tmp_path / "run" / "checkpoints" / "latest.pt")
    train(resumed, run_dir=tmp_path / "run")
    a, b = _rows(tmp_path / "ref"), _rows(tmp_path / "run")
    assert len(a) == len(b)
    assert all(x[k] == y[k] for x, y in zip(a, b) for k in x if k not in ("time/sps", "time/wall_s"))


@pytest.mark.parametrize("action", ["buffer", "random", "policy"])
def test_dyna_imagines_one_step_from_visited_states_with_the_chosen_action(action):
    agent = ALGORITHMS["dyna"]("InvertedPendulum-v5", seed=0, preset="none",
                               **{**MBPO_SMALL, "rollout_length": 1, "rollout_action": action})
    assert agent.cfg.real_ratio == 0.5
    agent.learn(300)  # one fit and one round of one-step rollouts, at 300 env steps
    mb, d = agent.model_buffer, agent.data
    n = len(mb)
    assert n == 200 and agent.fits == 1
    # every imagined transition starts from a visited state
    visited = {tuple(r) for r in d.obs.numpy().round(6)}
    assert all(tuple(r) in visited for r in mb.obs[:n].numpy().round(6))
    low, high = agent.act_space.low, agent.act_space.high
    acts = mb.actions[:n].numpy()
    assert acts.min() >= low.min() - 1e-6 and acts.max() <= high.max() + 1e-6
    if action == "buffer":  # the actions taken at those states in the real data
        pairs = {tuple(np.r_[o, a].round(6)) for o, a in zip(d.obs.numpy(), d.actions.numpy())}
        assert all(tuple(np.r_[o, a].round(6)) in pairs for o, a in zip(mb.obs[:n].numpy(), acts))


PENDULUM_FAST = dict(learning_starts=500, learning_rate=1e-3, torch_threads=1, eval_every=0, eval_episodes=0,
                     checkpoint_every=0)


@pytest.mark.learning
@pytest.mark.parametrize("algo", ["dyna", "mve"])
def test_dyna_and_mve_swing_up_the_pendulum_within_3000_env_steps(algo):
    """Dyna (one model step from visited (s, a), half of each batch imagined, 2 SAC updates per env
    step) and MVE (3-step expanded targets, 1 update) on Pendulum-v1's known reward, with the SAC
    learning rate rl-zoo uses there (1e-3); about a minute and a half each on one core. Measured
    (BENCHMARKS.md section 9, 5 evaluation episodes at 3000 env steps, seeds 0, 1, 2): dyna -120,
    -410, -342; mve -147, -143, -199. The test runs seed 0; Dyna is the less steady of the two
    (its seed 1 sits at the threshold here, and falls back to -1048 at 3500)."""
    agent = ALGORITHMS[algo]("Pendulum-v1", seed=0, preset="none", **PENDULUM_FAST)
    agent.learn(3000)
    ev = evaluate(agent, 5, seed=123)
    assert ev["eval/return_mean"] > -400, ev  # random actions: about -1200; swing-up and hold: about -150
    assert agent.fits >= 10


# ---------------------------------------------------------------------------------------------
# Policy learning through the model: pathwise (backpropagation) and likelihood-ratio gradients
# ---------------------------------------------------------------------------------------------


def test_imagined_returns_match_a_brute_force_sum():
    from deeprl.algos.model_based.model_backprop import imagined_returns

    g = torch.Generator().manual_seed(0)
    H, B, gamma = 5, 4, 0.9
    r, v = torch.randn(H, B, generator=g), torch.randn(B, generator=g)
    alive = torch.ones(H + 1, B)
    alive[3:, 1] = 0  # row 1 terminated on step 2 (its reward counts, later ones do not)
    out = imagined_returns(r, alive, v, gamma)
    for b in range(B):
        for t in range(H):
            want = sum(gamma ** (k - t) * alive[k, b] * r[k, b] for k in range(t, H))
            want = want + gamma ** (H - t) * alive[H, b] * v[b]
            assert float(out[t, b]) == pytest.approx(float(want), rel=1e-5, abs=1e-6)


def _toy(seed=0):
    """A deterministic ensemble and a tanh-Gaussian actor on 3-D states, 1-D actions (float32: the actor's
    distributions are float32 by design)."""
    from deeprl.nn.policies import Actor

    torch.manual_seed(seed)
    model = DynamicsEnsemble(3, 1, members=2, hidden=(16,), probabilistic=False)
    box = gym.spaces.Box(-1.0, 1.0, (3,))
    actor = Actor(box, gym.spaces.Box(-2.0, 2.0, (1,)), (16,), "tanh", ortho_init=False, state_dependent_std=True,
                  squash=True)
    return model, actor


def test_pathwise_gradient_equals_finite_differences():
    from deeprl.algos.model_based.model_backprop import imagine, imagined_returns

    model, actor = _toy()
    reward = lambda s, a, s2: -(s2.pow(2).sum(-1) + 0.1 * a.pow(2).sum(-1))  # noqa: E731
    s0 = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))

    def J():
        torch.manual_seed(5)  # the same reparameterisation noise every call
        states, rewards, _, alive = imagine(model, reward, None, actor, s0, 4, [0, 1],
                                            torch.Generator().manual_seed(2), pathwise=True)
        return imagined_returns(rewards, alive, torch.zeros(8), 0.95)[0].mean().double()

    p = actor.body[0].weight
    actor.zero_grad()
    J().backward()
    grad = p.grad[0, :2].clone()
    eps = 3e-3
    for j in range(2):
        with torch.no_grad():
            p[0, j] += eps
            up = float(J())
            p[0, j] -= 2 * eps
            down = float(J())
            p[0, j] += eps
        assert float(grad[j]) == pytest.approx((up - down) / (2 * eps), rel=2e-2, abs=1e-4)
    assert float(grad.abs().sum()) > 0


def test_likelihood_ratio_and_pathwise_gradients_agree_in_expectation():
    """Both estimate dJ/dtheta: on a one-step problem with many samples their means agree."""
    from deeprl.algos.model_based.model_backprop import imagine, policy_objective

    model, actor = _toy()
    with torch.no_grad():  # a model whose next state is the state: only the action's reward matters
        for layer in (model.mean_head,):
            layer.weight.zero_()
            layer.bias.zero_()
    reward = lambda s, a, s2: -(a[:, 0] - 0.5).pow(2)  # noqa: E731
    s0 = torch.zeros(200_000, 3)
    zero_value = lambda x: torch.zeros(x.shape[0])  # noqa: E731
    grads = {}
    for pathwise in (True, False):
        torch.manual_seed(0)
        states, rewards, logps, alive = imagine(model, reward, None, actor, s0, 1, [0, 1],
                                                torch.Generator().manual_seed(0), pathwise=pathwise)
        obj = policy_objective(states, rewards, logps, alive, torch.zeros(len(s0)), zero_value, 1.0, pathwise)
        actor.zero_grad()
        obj.backward()
        grads[pathwise] = actor.body[-1].bias.grad.clone()  # (mean, log_std) of the one action
    torch.testing.assert_close(grads[False], grads[True], rtol=0.05, atol=2e-3)


def test_model_backprop_pathwise_learns_the_pendulum_in_3000_steps():
    agent = ALGORITHMS["model_backprop"]("Pendulum-v1", seed=0, preset="none", initial_steps=1000,
                                         steps_per_iteration=200, horizon=10, policy_updates=100, ensemble_size=3,
                                         num_model_elites=3, model_hidden_sizes=(64, 64), model_max_epochs=20,
                                         gamma=0.95, torch_threads=1, eval_every=0, eval_episodes=0,
                                         checkpoint_every=0)
    agent.learn(3000)
    ev = evaluate(agent, 5, seed=123)
    assert ev["eval/return_mean"] > -500, ev  # random: about -1200; measured -230


def test_model_buffer_keeps_the_rollouts_of_the_last_retained_env_steps():
    from deeprl.algos.model_based.mbpo import model_buffer_capacity

    agent = mbpo(rollout_length=2, model_train_freq=100, rollout_batch_size=200, model_retain_steps=250)
    assert agent.model_buffer.capacity == model_buffer_capacity(agent.cfg) == 3 * 200 * 2
    assert mbpo(model_buffer_size=1234).model_buffer.capacity == 1234


def test_model_backprop_resumes_exactly(tmp_path):
    kw = dict(initial_steps=200, steps_per_iteration=100, horizon=3, policy_updates=3, batch_size=32,
              hidden_sizes=(16,), ensemble_size=2, num_model_elites=2, model_hidden_sizes=(16,), model_max_epochs=2,
              total_steps=500, checkpoint_every=300, eval_every=300, eval_episodes=1, torch_threads=1)
    make = lambda: ALGORITHMS["model_backprop"]("Pendulum-v1", seed=0, preset="none", **kw)  # noqa: E731
    ref = make()
    train(ref, run_dir=tmp_path / "ref")
    agent = make()
    orig, calls = agent.update, [0]

    def update(*a, **k):
        calls[0] += 1
        if calls[0] == 4:  # the iteration after the checkpoint at 300
            raise KeyboardInterrupt
        return orig(*a, **k)

    agent.update = update
    with pytest.raises(KeyboardInterrupt):
        train(agent, run_dir=tmp_path / "run")
    resumed = ALGORITHMS["model_backprop"].load(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert resumed.train_state["env_steps"] == 300
    train(resumed, run_dir=tmp_path / "run")
    a, b = _rows(tmp_path / "ref"), _rows(tmp_path / "run")
    assert len(a) == len(b)
    assert all(x[k] == y[k] for x, y in zip(a, b) for k in x if k not in ("time/sps", "time/wall_s"))


@pytest.mark.learning
def test_mbpo_balances_the_inverted_pendulum_within_3000_env_steps():
    """The preset (half real data, 10 SAC updates per env step, 1-step rollouts): about 3.5 minutes
    on one core. Measured: 1000 from 3000 env steps on (BENCHMARKS.md section 9); SAC alone at the
    same update ratio scored 1000 and 142 on seeds 0 and 1 at 3000."""
    agent = ALGORITHMS["mbpo"]("InvertedPendulum-v5", seed=0, torch_threads=1, eval_every=0, eval_episodes=0,
                               checkpoint_every=0)
    assert agent.cfg.real_ratio == 0.5 and agent.cfg.rollout_length == 1
    agent.learn(3000)
    assert evaluate(agent, 5, seed=123)["eval/return_mean"] >= 900
