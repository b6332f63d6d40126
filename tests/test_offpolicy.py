"""Off-policy algorithms: every switch runs, checkpoints round-trip, interrupted + resumed runs
equal uninterrupted ones (replay buffer included), and bad input is refused."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from test_resume import interrupt_after, latest_step, run_cli

from deeprl import DDPG, DQN, FQI, NAF, SAC, TD3, SoftQ
from deeprl.core.errors import ConfigError, SpaceError
from deeprl.runners.train import train

SMALL = dict(eval_every=0, eval_episodes=2, checkpoint_every=0, torch_threads=1)
DQN_SMALL = dict(SMALL, hidden_sizes=(32, 32), learning_starts=64, batch_size=16, train_freq=4,
                 target_update_interval=50, buffer_size=2000)
AC_SMALL = dict(SMALL, hidden_sizes=(32, 32), learning_starts=64, batch_size=16, buffer_size=2000)

DQN_VARIANTS = {
    "plain": {},
    "double-dueling": dict(double_q=True, dueling=True, loss="mse", tau=0.5),
    "nstep-prioritized": dict(n_step=3, prioritized=True, gradient_steps=-1),
    "rainbow": dict(double_q=True, dueling=True, n_step=3, prioritized=True, noisy=True, distributional=True,
                    n_atoms=11, v_min=0.0, v_max=50.0),
}
AC_VARIANTS = {
    "sac-min": (SAC, {}),
    "sac-mean-fixed-alpha": (SAC, dict(backup="mean", autotune_alpha=False, alpha=0.2)),
    "sac-doubleq": (SAC, dict(backup="doubleq")),
    "sac-reinforce": (SAC, dict(actor_gradient="reinforce", reinforce_samples=3)),
    "sac-redq-nstep": (SAC, dict(num_critics=5, critic_subset=2, gradient_steps=3, n_step=2)),
    "td3": (TD3, {}),
    "td3-episodes": (TD3, dict(train_freq_unit="episode", gradient_steps=-1)),
    "ddpg": (DDPG, {}),
    "ddpg-ou": (DDPG, dict(noise_type="ou")),
    "naf": (NAF, dict(gradient_steps=2)),
}


def _finite_summary(summary):
    assert summary["env_steps"] >= 300
    assert math.isfinite(summary["eval_return_mean"])


@pytest.mark.parametrize("variant", list(DQN_VARIANTS))
def test_dqn_variants_run_and_round_trip(variant, tmp_path):
    agent = DQN("CartPole-v1", seed=0, preset="none", total_steps=300, **{**DQN_SMALL, **DQN_VARIANTS[variant]})
    _finite_summary(train(agent, run_dir=tmp_path))
    loaded = DQN.load(tmp_path / "checkpoints" / "latest.pt")
    obs = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.predict(obs), loaded.predict(obs))
    assert len(loaded.replay) == len(agent.replay) == 300


@pytest.mark.parametrize("variant", list(AC_VARIANTS))
def test_continuous_variants_run_and_round_trip(variant, tmp_path):
    cls, kw = AC_VARIANTS[variant]
    agent = cls("Pendulum-v1", seed=0, preset="none", total_steps=400, **{**AC_SMALL, **kw})
    _finite_summary(train(agent, run_dir=tmp_path))
    loaded = cls.load(tmp_path / "checkpoints" / "latest.pt")
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    a = agent.predict(obs)
    assert a.shape == (5, 1) and np.all(np.abs(a) <= 2.0)
    np.testing.assert_array_equal(a, loaded.predict(obs))


@pytest.mark.parametrize("cls,kw", [(SoftQ, dict(DQN_SMALL, alpha=0.5, n_step=2)),
                                    (FQI, dict(SMALL, iterations=3, fit_steps=5, hidden_sizes=(16,)))])
def test_soft_q_and_fqi_run_and_round_trip(cls, kw, tmp_path):
    agent = cls("CartPole-v1", seed=0, preset="none", total_steps=300, **kw)
    _finite_summary(train(agent, run_dir=tmp_path))
    loaded = cls.load(tmp_path / "checkpoints" / "latest.pt")
    obs = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.predict(obs), loaded.predict(obs))


def test_naf_q_function_is_maximised_at_mu_with_value_v():
    from deeprl.algos.offpolicy.naf import naf_q

    torch.manual_seed(0)
    agent = NAF("Pendulum-v1", preset="none", hidden_sizes=(16,))
    net = agent.q_net
    with torch.no_grad():
        net.l_entries.bias.normal_()  # make P far from the identity
        obs = torch.randn(32, 3)
        v, mu, P = net(obs)
        torch.testing.assert_close(naf_q(v, mu, P, mu), v)
        assert torch.linalg.eigvalsh(P).min() > 0 and torch.allclose(P, P.transpose(1, 2))
        for _ in range(20):
            u = torch.rand(32, 1) * 2 - 1
            assert (naf_q(v, mu, P, u) <= v + 1e-6).all()
        # by hand for a 1-D action: Q = V - P/2 (u - mu)^2
        u = torch.full((32, 1), 0.3)
        torch.testing.assert_close(naf_q(v, mu, P, u), v - 0.5 * P[:, 0, 0] * (0.3 - mu[:, 0]) ** 2)


def test_soft_q_policy_is_boltzmann_in_q():
    torch.manual_seed(0)
    agent = SoftQ("CartPole-v1", preset="none", alpha=0.7, hidden_sizes=(8,), learning_starts=0)
    obs = np.random.default_rng(1).normal(size=(1, 4)).astype(np.float32)
    with torch.no_grad():
        q = agent.q_net(torch.as_tensor(obs))[0].numpy()
    p = np.exp(q / 0.7 - np.logaddexp.reduce(q / 0.7))
    act = agent.behaviour_policy()
    draws = np.array([act(obs)[0][0] for _ in range(20_000)])
    freq = np.bincount(draws, minlength=2) / len(draws)
    assert np.abs(freq - p).max() < 4 * np.sqrt(p.max() * (1 - p.max()) / len(draws)) + 1e-3
    a, logp = act(obs)
    assert logp[0] == pytest.approx(np.log(p[a[0]]), rel=1e-4)


def test_dqn_on_images_and_sac_on_dict_observations():
    agent = DQN("ImageTarget-v0", seed=0, preset="none", total_steps=120, **dict(DQN_SMALL, hidden_sizes=(16,)))
    assert agent.replay is None  # the replay loop builds the buffer on the first learn()
    assert math.isfinite(train(agent)["eval_return_mean"])
    assert agent.replay.obs.dtype == np.uint8  # pixels stay uint8 in the buffer
    agent = SAC("DictPoint-v0", seed=0, preset="none", total_steps=120, **AC_SMALL)
    assert math.isfinite(train(agent)["eval_return_mean"])


def test_sac_autotunes_alpha_towards_the_target_entropy():
    agent = SAC("Pendulum-v1", seed=0, preset="none", total_steps=600, **AC_SMALL)
    train(agent)
    # with entropy above the target (-1) alpha falls from its initial 1.0
    assert math.exp(agent.log_alpha) < 0.9


def test_scalar_adam_matches_torch_adam():
    from deeprl.algos.offpolicy.sac import ScalarAdam

    p = torch.nn.Parameter(torch.tensor(0.3, dtype=torch.float64))
    opt = torch.optim.Adam([p], lr=0.01)
    mine, value = ScalarAdam(0.01), 0.3
    for g in np.random.default_rng(0).normal(size=200) * 3:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        value = mine.step(value, float(g))
        assert value == pytest.approx(p.item(), abs=1e-12)


# -- resume ------------------------------------------------------------------------------------------
RESUME_CASES = {
    "dqn-prioritized-nstep": (DQN, "CartPole-v1", dict(DQN_SMALL, n_step=3, prioritized=True, gradient_steps=2)),
    "sac": (SAC, "Pendulum-v1", dict(AC_SMALL, train_freq=2)),
    "td3-episodes": (TD3, "Pendulum-v1", dict(AC_SMALL, train_freq_unit="episode", gradient_steps=-1)),
}


def _state(agent):
    out = {}
    for name, m in agent.modules().items():
        sd = m.state_dict()
        if set(sd) == {"state", "param_groups"}:  # an optimiser (deeprl.nn.optim or torch.optim)
            for i, st in sd["state"].items():
                for k, v in st.items():
                    out[f"{name}.{i}.{k}"] = v
        else:
            out.update({f"{name}.{k}": v for k, v in sd.items()})
    return out


def _rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in ("time/sps", "time/wall_s")} for r in csv.DictReader(f)]


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_interrupted_then_resumed_equals_uninterrupted(case, tmp_path):
    cls, env, kw = RESUME_CASES[case]
    kw = dict(kw, total_steps=800, checkpoint_every=300, eval_every=400, log_every=100)
    ref = cls(env, seed=3, preset="none", **kw)
    train(ref, run_dir=tmp_path / "ref")

    agent = cls(env, seed=3, preset="none", **kw)
    n_iter = 3 if kw.get("train_freq_unit") == "episode" else 500 // (kw.get("train_freq", 4) if cls is DQN
                                                                      else kw.get("train_freq", 1))
    interrupt_after(agent, n_iter, "observe")  # once per iteration of the replay loop
    with pytest.raises(KeyboardInterrupt):
        train(agent, run_dir=tmp_path / "run")
    step = latest_step(tmp_path / "run")
    assert 0 < step < 800
    resumed = cls.load(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert len(resumed.replay) == min(step, kw["buffer_size"])
    train(resumed, run_dir=tmp_path / "run")

    a, b = _state(ref), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    ra, rb = ref.replay.state_dict(), resumed.replay.state_dict()
    for k in ("rewards", "actions", "terminated", "truncated"):
        np.testing.assert_array_equal(ra[k], rb[k])
    if ra["priorities"] is not None:
        np.testing.assert_array_equal(ra["priorities"], rb["priorities"])
    assert _rows(tmp_path / "ref") == _rows(tmp_path / "run")
    sa, sb = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("ref", "run"))
    assert sa["eval_return_mean"] == sb["eval_return_mean"] and sa["env_steps"] == sb["env_steps"]


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,env,supported", [(DQN, "Pendulum-v1", "Discrete"), (SAC, "CartPole-v1", "Box"),
                                               (TD3, "CartPole-v1", "Box"), (DDPG, "CartPole-v1", "Box")])
def test_wrong_action_space_names_the_supported_spaces(cls, env, supported):
    with pytest.raises(SpaceError, match=f"{cls.name} does not support action space .*supported: {supported}"):
        cls(env, preset="none")


def test_observation_normalisation_with_replay_is_refused():
    with pytest.raises(ConfigError, match="normalize_obs"):
        DQN("CartPole-v1", preset="none", normalize_obs=True)


def test_buffer_larger_than_memory_is_refused_before_anything_is_written(tmp_path):
    run_dir = tmp_path / "run"
    p = run_cli(["train", "dqn", "--env", "CartPole-v1", "buffer_size=1e13", "--run-dir", str(run_dir)],
                cwd=tmp_path)
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "buffer_size=10000000000000 needs" in err[0] and "GiB" in err[0], p.stderr
    assert not run_dir.exists()


def test_invalid_distributional_support_is_refused():
    with pytest.raises(ConfigError, match="v_max"):
        DQN("CartPole-v1", preset="none", distributional=True, v_min=5.0, v_max=1.0)


@pytest.mark.parametrize("cls,env,kw", [(SAC, "Pendulum-v1", AC_SMALL), (TD3, "Pendulum-v1", AC_SMALL),
                                        (DQN, "CartPole-v1", DQN_SMALL)])
def test_bfloat16_matmuls_keep_float32_weights_and_outputs(cls, env, kw):
    agent = cls(env, seed=0, preset="none", total_steps=300, matmul_precision="bfloat16", **kw)
    summary = train(agent)
    assert math.isfinite(summary["eval_return_mean"])
    for name, m in agent.modules().items():
        if isinstance(m, torch.nn.Module):
            assert all(p.dtype == torch.float32 for p in m.parameters()), name
    with agent.autocast():
        x = torch.zeros(4, agent.obs_space.shape[0])
        out = agent.q_net(x) if cls is DQN else agent.critic(x, torch.zeros(4, 1))
    assert out.dtype == torch.float32


def test_dqn_on_atari_stores_one_frame_per_step_and_round_trips(tmp_path):
    """ALE ids get Nature preprocessing (4 stacked 84x84 frames) and the Nature CNN; the replay
    buffer keeps one 84x84 frame per step and rebuilds the stacks it samples."""
    agent = DQN("ALE/Pong-v5", seed=0, preset="none", total_steps=400, eval_every=0, eval_episodes=1,
                checkpoint_every=0, torch_threads=1, hidden_sizes=(), learning_starts=100, batch_size=8,
                train_freq=4, target_update_interval=100, buffer_size=300, clip_rewards=True)
    train(agent, run_dir=tmp_path)
    assert agent.obs_space.shape == (4, 84, 84)
    assert agent.replay.k == 4 and agent.replay.obs.shape == (300, 1, 84, 84)
    b = agent.replay.sample(64)
    assert b.obs.shape == (64, 4, 84, 84) and b.obs.dtype == torch.uint8
    loaded = DQN.load(tmp_path / "checkpoints" / "latest.pt")
    np.testing.assert_array_equal(loaded.replay.obs, agent.replay.obs)
    obs = np.random.default_rng(0).integers(0, 255, (3, 4, 84, 84), dtype=np.uint8)
    np.testing.assert_array_equal(agent.predict(obs), loaded.predict(obs))
