"""Feature switches of the policy-gradient family (PPO, REINFORCE, ActorCritic, A2C) on tiny
configs: each test builds small agents, collects one or two real rollouts and checks one
feature against an independent reconstruction or a same-seed control run.

Same-seed controls: two agents built with the same seed have identical initial networks
and RNG streams, so updating both on *the same* collected batch isolates the effect of the
one hyperparameter that differs.
"""
from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from deeprl import A2C, PPO, REINFORCE, ActorCritic
from deeprl.core.returns import gae, reward_to_go
from deeprl.runners.train import train

# CartPole with a 12-step time limit: a random policy's episodes end both by termination
# (pole falls, often before 12 steps) and by truncation, so both bootstrap cases occur.
SHORT_CARTPOLE = "DeeprlTest/CartPoleShort-v0"
if SHORT_CARTPOLE not in gym.registry:
    gym.register(SHORT_CARTPOLE, entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv",
                 max_episode_steps=12)

QUIET = {"preset": "none", "eval_every": 0, "eval_episodes": 0, "total_steps": 10_000}


def collect_with_both_endings(make_agent):
    """(agent, batch) for the first seed whose rollout holds a termination, a truncation and an
    episode cut by the end of the batch (the cases the return estimators must tell apart)."""
    for seed in range(50):
        agent = make_agent(seed)
        batch = collect(agent)
        if (batch.terminated.any() and batch.truncated.any()
                and not (batch.terminated[-1] | batch.truncated[-1]).all()):
            return agent, batch
    raise AssertionError("no seed in 0..49 gave a rollout with both kinds of episode end")


def ppo(env="CartPole-v1", **kw):
    cfg = {**QUIET, "seed": 0, "n_steps": 32, "batch_size": 32, "n_epochs": 2, **kw}
    return PPO(env, **cfg)


def collect(agent, n=None):
    agent.collector = agent.make_collector()
    kind, default = agent.rollout_spec()
    n = default if n is None else n
    if kind == "steps":
        return agent.absorb(agent.collector.collect_steps(agent.behaviour_policy(), n))
    return agent.absorb(agent.collector.collect_episodes(agent.behaviour_policy(), n))


def params(agent, *names):
    return torch.cat([p.detach().flatten().clone() for name in names
                      for p in getattr(agent, name).parameters()])


def column_episodes(term, trunc, valid=None):
    """Per env column: list of (step indices, end kind) with end kind term/trunc/batch."""
    T, N = term.shape
    out = []
    for i in range(N):
        eps, cur = [], []
        for t in range(T):
            if valid is not None and not valid[t, i]:
                break
            cur.append(t)
            if term[t, i] or trunc[t, i]:
                eps.append((cur, "term" if term[t, i] else "trunc"))
                cur = []
        if cur:
            eps.append((cur, "batch"))
        out.append(eps)
    return out


# ======================================================================================
# PPO
# ======================================================================================


@pytest.mark.parametrize("num_envs,n_steps,batch_size,n_epochs", [
    (2, 32, 16, 3),   # 64 samples -> 4 minibatches
    (2, 32, 24, 2),   # 64 // 24 = 2 minibatches (the ragged remainder is dropped)
    (1, 32, 100, 3),  # batch_size > samples -> one minibatch of everything
])
def test_ppo_runs_every_minibatch_without_target_kl(num_envs, n_steps, batch_size, n_epochs):
    agent = ppo(num_envs=num_envs, n_steps=n_steps, batch_size=batch_size, n_epochs=n_epochs)
    m = agent.update(collect(agent), 0.0)
    n = num_envs * n_steps
    minibatches = max(n // batch_size, 1)
    assert m["train/gradient_steps"] == n_epochs * minibatches
    assert m["train/stopped_early"] == 0.0


def test_ppo_target_kl_stops_early():
    n_epochs, minibatches = 4, 4
    agent = ppo(num_envs=2, n_steps=32, batch_size=16, n_epochs=n_epochs, target_kl=1e-9, learning_rate=1e-2)
    m = agent.update(collect(agent), 0.0)
    assert m["train/stopped_early"] == 1.0
    # the first minibatch sees the behaviour policy itself (KL = 0), so exactly one step is
    # taken; the second minibatch already exceeds 1.5e-9 and ends the whole iteration
    assert m["train/gradient_steps"] == 1 < n_epochs * minibatches
    # a loose target never triggers
    loose = ppo(num_envs=2, n_steps=32, batch_size=16, n_epochs=n_epochs, target_kl=1e3, learning_rate=1e-2)
    m = loose.update(collect(loose), 0.0)
    assert m["train/stopped_early"] == 0.0 and m["train/gradient_steps"] == n_epochs * minibatches


def test_ppo_kl_penalty_coefficient_doubles_when_kl_is_large():
    agent = ppo(objective="kl_penalty", kl_target=1e-8, kl_coef_init=1.0, learning_rate=1e-2, n_epochs=4)
    batch = collect(agent)
    expected = 1.0
    for _ in range(3):
        m = agent.update(batch, 0.0)
        assert m["train/approx_kl"] > 1.5 * 1e-8
        expected *= 2
        assert m["train/kl_coef"] == expected
        assert agent.kl_coef == expected
    assert np.isfinite(m["loss/policy"])


def test_ppo_kl_penalty_coefficient_halves_when_kl_is_small():
    agent = ppo(objective="kl_penalty", kl_target=10.0, kl_coef_init=3.0)
    batch = collect(agent)
    m = agent.update(batch, 0.0)
    assert m["train/approx_kl"] < 10.0 / 1.5
    assert m["train/kl_coef"] == 1.5
    m = agent.update(batch, 0.0)
    assert m["train/kl_coef"] == 0.75 and agent.kl_coef == 0.75
    # the clip objective neither adapts nor reports the coefficient
    clip = ppo()
    assert "train/kl_coef" not in clip.update(collect(clip), 0.0)


def test_ppo_kl_penalty_term_enters_the_loss():
    kw = {"objective": "kl_penalty", "learning_rate": 1e-2, "n_epochs": 4, "batch_size": 16}
    batch = collect(ppo(**kw))
    out = {}
    for beta in (0.0, 0.0, 50.0):
        agent = ppo(kl_coef_init=beta, **kw)
        m = agent.update(batch, 0.0)
        out.setdefault(beta, []).append((params(agent, "actor"), m["train/approx_kl"]))
    assert torch.equal(out[0.0][0][0], out[0.0][1][0])  # same-seed control
    assert not torch.allclose(out[0.0][0][0], out[50.0][0][0])
    assert out[50.0][0][1] < out[0.0][0][1]  # a heavy penalty keeps the policy closer


def test_ppo_kl_coef_is_checkpointed(tmp_path):
    agent = ppo(objective="kl_penalty", kl_target=10.0)
    agent.update(collect(agent), 0.0)
    agent.save(tmp_path / "a.pt")
    assert PPO.load(tmp_path / "a.pt").kl_coef == agent.kl_coef == 0.5


def test_ppo_clip_range_vf_is_used_and_finite():
    kw = {"learning_rate": 3e-3, "n_epochs": 3, "batch_size": 16}
    base = ppo(**kw)
    batch = collect(base)
    results = {}
    for vf in (None, 1e-3, 1e9):
        agent = ppo(clip_range_vf=vf, **kw)
        m = agent.update(batch, 0.0)
        assert all(np.isfinite(m[k]) for k in ("loss/policy", "loss/value", "loss/entropy")), m
        results[vf] = params(agent, "critic")
    # a tiny clip range changes the critic's training; a huge one is the unclipped loss
    assert not torch.allclose(results[None], results[1e-3], atol=1e-6)
    torch.testing.assert_close(results[None], results[1e9], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("progress", [0.0, 0.3, 0.75, 1.0])
@pytest.mark.parametrize("lr_schedule,clip_schedule", [("linear", "constant"), ("constant", "linear"),
                                                       ("linear", "linear")])
def test_ppo_linear_lr_and_clip_schedules(progress, lr_schedule, clip_schedule):
    agent = ppo(lr_schedule=lr_schedule, clip_schedule=clip_schedule, learning_rate=3e-4, clip_range=0.2)
    m = agent.update(collect(agent), progress)
    lr = 3e-4 * (1 - progress) if lr_schedule == "linear" else 3e-4
    clip = 0.2 * (1 - progress) if clip_schedule == "linear" else 0.2
    assert m["train/learning_rate"] == pytest.approx(lr, abs=1e-15)
    assert m["train/clip_range"] == pytest.approx(clip, abs=1e-15)
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(lr, abs=1e-15)


def test_ppo_constant_schedules_ignore_progress():
    agent = ppo(learning_rate=3e-4, clip_range=0.2)
    m = agent.update(collect(agent), 0.6)
    assert m["train/learning_rate"] == 3e-4 and m["train/clip_range"] == 0.2


def test_ppo_entropy_bonus_enters_the_loss():
    kw = {"learning_rate": 1e-2, "n_epochs": 2}
    batch = collect(ppo(**kw))
    out = {}
    for name, ent in (("zero", 0.0), ("zero_again", 0.0), ("bonus", 0.5)):
        agent = ppo(ent_coef=ent, **kw)
        m = agent.update(batch, 0.0)
        out[name] = (params(agent, "actor", "critic"), m)
    # control: same seed, same batch, same config -> bit-identical
    assert torch.equal(out["zero"][0], out["zero_again"][0])
    # the entropy term changes the actor's update
    assert not torch.allclose(out["zero"][0], out["bonus"][0])
    # in the direction of more entropy
    assert out["bonus"][1]["loss/entropy"] > out["zero"][1]["loss/entropy"]
    # with ent_coef = 0 the entropy is still reported
    h = out["zero"][1]["loss/entropy"]
    assert np.isfinite(h) and 0 < h <= np.log(2) + 1e-6


def test_ppo_squashed_actions_stay_within_bounds():
    env = gym.make("Pendulum-v1")
    low, high = env.action_space.low, env.action_space.high
    rng = np.random.default_rng(0)
    obs = rng.uniform(env.observation_space.low, env.observation_space.high, size=(512, 3)).astype(np.float32)
    # a wide Gaussian (std e^1.5 ~ 4.5) regularly samples outside [-2, 2] ...
    plain = ppo("Pendulum-v1", log_std_init=1.5)
    with torch.no_grad():
        a, _ = plain.act(torch.as_tensor(obs))
    assert (a.numpy() > high).any() and (a.numpy() < low).any()
    # ... unless squashed
    agent = ppo("Pendulum-v1", log_std_init=1.5, squash=True)
    with torch.no_grad():
        a, logp = agent.act(torch.as_tensor(obs))
    a = a.numpy()
    assert np.all(a >= low) and np.all(a <= high)
    assert torch.isfinite(logp).all()
    assert a.std() > 0.5  # genuinely spread out, not collapsed
    for deterministic in (True, False):
        p = agent.predict(obs, deterministic=deterministic)
        assert p.shape == (512, 1) and np.all(p >= low) and np.all(p <= high)
        single = agent.predict(obs[0], deterministic=deterministic)
        assert single.shape == (1,) and low[0] <= single[0] <= high[0]
    # the stored rollout actions are in bounds too and an update stays finite
    batch = collect(agent)
    assert np.all(batch.actions >= low) and np.all(batch.actions <= high)
    assert np.isfinite(batch.log_probs).all()
    m = agent.update(batch, 0.0)
    assert np.isfinite(m["loss/policy"]) and np.isfinite(m["loss/value"])


def test_ppo_state_dependent_std():
    agent = ppo("Pendulum-v1", state_dependent_std=True, log_std_init=-0.5)
    assert not hasattr(agent.actor, "log_std")  # no free parameter: the network produces it
    rng = np.random.default_rng(1)
    obs = torch.as_tensor(rng.uniform(-8, 8, size=(64, 3)), dtype=torch.float32)
    with torch.no_grad():
        std = agent.actor(obs).std
    assert std.shape == (64, 1)
    assert (std.max() - std.min()).item() > 1e-5  # different states, different std
    np.testing.assert_allclose(std.numpy(), np.exp(-0.5), rtol=0.2)  # near the initial value
    # control: the state-independent policy has one std for every state
    plain = ppo("Pendulum-v1", log_std_init=-0.5)
    with torch.no_grad():
        std_plain = plain.actor(obs).std
    assert torch.all(std_plain == std_plain[0])
    # training moves the std through the network and stays finite
    batch = collect(agent)
    m = agent.update(batch, 0.0)
    assert np.isfinite(m["loss/policy"]) and np.isfinite(m["loss/entropy"])
    with torch.no_grad():
        assert not torch.equal(agent.actor(obs).std, std)


# ======================================================================================
# REINFORCE
# ======================================================================================


def reinforce(**kw):
    return REINFORCE("CartPole-v1", **{**QUIET, "seed": 0, "batch_size": 200, **kw})


def ref_reinforce_advantages(batch, gamma, rtg):
    """Full-trajectory return (discounted from the episode's first step) or reward-to-go,
    at every valid step, by explicit sums over each complete episode."""
    adv = []
    for i, eps in enumerate(column_episodes(batch.terminated, batch.truncated, batch.valid)):
        for idx, _ in eps:
            r = [float(batch.rewards[t, i]) for t in idx]
            if rtg:
                adv += [sum(gamma**k * r[j + k] for k in range(len(r) - j)) for j in range(len(r))]
            else:
                adv += [sum(gamma**k * x for k, x in enumerate(r))] * len(r)
    return np.array(adv)


def test_reinforce_reward_to_go_changes_advantages():
    gamma = 0.9
    batch = collect(reinforce(gamma=gamma, num_envs=2))
    stds = {}
    for rtg in (False, True):
        agent = reinforce(gamma=gamma, num_envs=2, reward_to_go=rtg)
        m = agent.update(batch, 0.0)
        ref = ref_reinforce_advantages(batch, gamma, rtg)
        assert ref.size == batch.num_steps == m["train/batch_steps"]
        assert m["train/advantage_std"] == pytest.approx(np.std(ref), rel=1e-6)
        assert "loss/value" not in m
        stds[rtg] = m["train/advantage_std"]
    assert stds[False] != pytest.approx(stds[True], rel=1e-3)


def test_reinforce_baseline_reports_value_loss_and_explained_variance():
    gamma = 0.95
    agent = reinforce(gamma=gamma, baseline=True, reward_to_go=True)
    batch = collect(agent)
    critic_before = copy.deepcopy(agent.critic)
    m = agent.update(batch, 0.0)
    assert np.isfinite(m["loss/value"]) and m["loss/value"] > 0
    # explained variance of the pre-update critic on the Monte Carlo reward-to-go (CartPole
    # episodes here all terminate, so nothing is bootstrapped)
    assert not batch.truncated[batch.valid].any()
    q = ref_reinforce_advantages(batch, gamma, rtg=True)
    # ref_reinforce_advantages walks env columns in time order; gather V the same way
    order = [(t, i) for i in range(batch.valid.shape[1]) for t in range(batch.valid.shape[0]) if batch.valid[t, i]]
    with torch.no_grad():
        v = critic_before(torch.as_tensor(np.stack([batch.obs[t, i] for t, i in order]))).double().numpy()
    assert v.shape == q.shape
    ev = 1 - np.var(q - v) / np.var(q)
    assert m["train/explained_variance"] == pytest.approx(ev, rel=1e-4, abs=1e-5)
    # the baseline was fitted (its parameters moved)
    assert not torch.equal(params(agent, "critic"), torch.cat([p.flatten() for p in critic_before.parameters()]))


def test_reinforce_gae_lambda_needs_a_baseline():
    """GAE needs a value function: gae_lambda without baseline is a config error; with a
    baseline, GAE(0.5) advantages differ from reward-to-go minus V."""
    from deeprl.core.errors import ConfigError

    with pytest.raises(ConfigError, match="gae_lambda.*baseline=true"):
        reinforce(reward_to_go=True, baseline=False, gae_lambda=0.5)
    batch = collect(reinforce(reward_to_go=True))
    runs = {}
    for lam in (None, 0.5):
        agent = reinforce(reward_to_go=True, baseline=True, gae_lambda=lam)
        m = agent.update(batch, 0.0)
        runs[lam] = (m, params(agent, "actor"))
    assert runs[None][0]["train/advantage_std"] != pytest.approx(runs[0.5][0]["train/advantage_std"])
    assert not torch.equal(runs[None][1], runs[0.5][1])


def test_reinforce_baseline_without_reward_to_go_uses_the_full_return():
    """baseline=true, reward_to_go=false: advantage = whole-episode return - V(s_t)."""
    batch = collect(reinforce(reward_to_go=False))
    stds = {}
    for rtg in (False, True):
        agent = reinforce(reward_to_go=rtg, baseline=True)
        stds[rtg] = agent.update(batch, 0.0)["train/advantage_std"]
    assert stds[False] != pytest.approx(stds[True])


@pytest.mark.parametrize("num_envs,batch_size", [(1, 50), (3, 120), (1, 600)])
def test_collect_episodes_returns_complete_episodes(num_envs, batch_size):
    # (1, 600): CartPole episodes under a random policy are short, so one env runs for more
    # than the collector's initial 256-step buffer and the buffer grows
    agent = reinforce(num_envs=num_envs, batch_size=batch_size)
    agent.collector = agent.make_collector()
    batch = agent.collector.collect_episodes(agent.behaviour_policy(), batch_size)
    valid, ends = batch.valid, batch.terminated | batch.truncated
    T, N = valid.shape
    assert N == num_envs
    assert batch.num_steps >= batch_size
    assert valid.any(0).all()  # every env contributed
    if batch_size == 600:
        assert T > 256
    for i in range(N):
        n_valid = int(valid[:, i].sum())
        assert valid[:n_valid, i].all() and not valid[n_valid:, i].any()  # a prefix
        assert ends[n_valid - 1, i], f"env {i} ends its valid steps mid-episode"
    # the data survive the buffer growth: CartPole pays 1 per step, and inside an episode
    # next_obs[t] is obs[t + 1]
    assert np.all(batch.rewards[valid] == 1.0)
    inner = valid[1:] & ~ends[:-1]
    np.testing.assert_array_equal(batch.next_obs[:-1][inner], batch.obs[1:][inner])
    # the episodes counted by the collector are exactly the ones in the batch
    assert agent.collector.episodes == int((ends & valid).sum())
    assert agent.collector.env_steps == batch.num_steps
    # a rollout of complete episodes only: no valid step of an unfinished episode
    for i, eps in enumerate(column_episodes(batch.terminated, batch.truncated, valid)):
        assert all(kind != "batch" for _, kind in eps), f"env {i} has an incomplete episode"


# ======================================================================================
# ActorCritic
# ======================================================================================


def actor_critic(env="CartPole-v1", **kw):
    return ActorCritic(env, **{**QUIET, "seed": 0, **kw})


def test_actor_critic_online_variant_runs():
    agent = actor_critic(n_steps=1, num_envs=1, num_target_updates=1, num_grad_steps_per_target_update=1,
                         total_steps=300)
    actor0, critic0 = params(agent, "actor"), params(agent, "critic")
    summary = train(agent)
    assert summary["env_steps"] == 300 and summary["iterations"] == 300
    actor1, critic1 = params(agent, "actor"), params(agent, "critic")
    assert torch.isfinite(actor1).all() and torch.isfinite(critic1).all()
    # both networks learn from one-sample batches (a one-element advantage must not be
    # "standardised" to 0, which would freeze the actor)
    assert not torch.equal(critic0, critic1)
    assert not torch.equal(actor0, actor1)
    m = agent.update(agent.collector.collect_steps(agent.behaviour_policy(), 1), 0.5)
    assert np.isfinite(m["loss/critic"]) and np.isfinite(m["loss/policy"])


def ref_n_step(batch, next_values, gamma, n):
    """y_t = sum_{k<n} gamma^k r_{t+k} + gamma^n V(s_{t+n}), stopping at an episode end
    (0 after a termination, V(final obs) after a truncation) or at the batch end."""
    T, N = batch.rewards.shape
    y = np.zeros((T, N))
    for i in range(N):
        for t in range(T):
            acc = 0.0
            for k in range(n):
                j = t + k
                acc += gamma**k * batch.rewards[j, i]
                if batch.terminated[j, i]:
                    break
                if batch.truncated[j, i] or k == n - 1 or j == T - 1:
                    acc += gamma ** (k + 1) * next_values[j, i]
                    break
            y[t, i] = acc
    return y


def test_actor_critic_n_step_targets():
    gamma = 0.9
    a1, batch = collect_with_both_endings(
        lambda s: actor_critic(SHORT_CARTPOLE, seed=s, n_steps=24, num_envs=2, gamma=gamma, n_step=1))
    a3 = actor_critic(SHORT_CARTPOLE, seed=a1.run.seed, n_steps=24, num_envs=2, gamma=gamma, n_step=3)
    with torch.no_grad():
        nv = a1.critic(torch.as_tensor(batch.next_obs.reshape(-1, 4))).numpy().reshape(24, 2)
    y1 = a1._targets(batch).numpy().reshape(24, 2)
    y3 = a3._targets(batch).numpy().reshape(24, 2)
    # one-step targets: r + gamma * (1 - terminated) * V(s')
    np.testing.assert_allclose(y1, batch.rewards + gamma * np.where(batch.terminated, 0, nv), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y1, ref_n_step(batch, nv, gamma, 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y3, ref_n_step(batch, nv, gamma, 3), rtol=1e-5, atol=1e-5)
    assert not np.allclose(y1, y3, atol=1e-3)


# ======================================================================================
# A2C
# ======================================================================================


def ref_bootstrapped_returns(batch, values_next, gamma):
    """Forward sums R_t = sum_k gamma^k r_{t+k} to the end of the episode or of the batch,
    plus gamma^(K) V(next_obs) where that end is a truncation or the batch boundary."""
    T, N = batch.rewards.shape
    R = np.zeros((T, N))
    for i in range(N):
        for t in range(T):
            acc, k, j = 0.0, 0, t
            while True:
                acc += gamma**k * batch.rewards[j, i]
                if batch.terminated[j, i]:
                    break
                if batch.truncated[j, i] or j == T - 1:
                    acc += gamma ** (k + 1) * values_next[j, i]
                    break
                k, j = k + 1, j + 1
            R[t, i] = acc
    return R


def test_a2c_gae_lambda_one_is_bootstrapped_reward_to_go_minus_values():
    gamma, T, N = 0.95, 30, 2
    agent, batch = collect_with_both_endings(
        lambda s: A2C(SHORT_CARTPOLE, **{**QUIET, "seed": s, "n_steps": T, "num_envs": N, "gamma": gamma}))
    assert agent.cfg.gae_lambda == 1.0
    with torch.no_grad():
        v = agent.critic(torch.as_tensor(batch.obs.reshape(-1, 4))).double().numpy().reshape(T, N)
        nv = agent.critic(torch.as_tensor(batch.next_obs.reshape(-1, 4))).double().numpy().reshape(T, N)
        logp = agent.actor(torch.as_tensor(batch.obs.reshape(-1, 4))).log_prob(
            torch.as_tensor(batch.actions.reshape(-1))).double().numpy()
    R = ref_bootstrapped_returns(batch, nv, gamma)
    adv_ref = R - v
    # deeprl.core.returns: GAE(lambda=1) == bootstrapped reward-to-go - V == the reference
    adv = gae(batch.rewards, v, nv, batch.terminated, batch.truncated, gamma, 1.0)
    np.testing.assert_allclose(adv, adv_ref, rtol=1e-6, atol=1e-6)
    rtg = reward_to_go(batch.rewards, batch.terminated, batch.truncated, gamma, nv)
    np.testing.assert_allclose(rtg - v, adv_ref, rtol=1e-6, atol=1e-6)
    # and the A2C update uses exactly these advantages and returns (losses are pre-step)
    m = agent.update(batch, 0.0)
    adv_f, R_f, v_f = adv_ref.reshape(-1), R.reshape(-1), v.reshape(-1)
    assert m["loss/value"] == pytest.approx(np.mean((v_f - R_f) ** 2), rel=1e-4)
    assert m["loss/policy"] == pytest.approx(-np.mean(logp * adv_f), rel=1e-4, abs=1e-6)
    assert m["train/explained_variance"] == pytest.approx(1 - np.var(R_f - v_f) / np.var(R_f), rel=1e-4, abs=1e-6)


# ======================================================================================
# Observation and reward normalisation (PPO, Pendulum)
# ======================================================================================


def _ref_mean_var(rows):
    """Mean/var of the rows plus RunningMeanStd's pseudo-sample (count 1e-4, mean 0, var 1)."""
    rows = np.asarray(rows, np.float64)
    total = 1e-4 + rows.shape[0]
    mean = rows.sum(0) / total
    var = (1e-4 * (1 + mean**2) + ((rows - mean) ** 2).sum(0)) / total
    return mean, var


def _replay_pendulum(seed, actions):
    """Raw observations (T+1, N, 3) and rewards (T, N) of the collector's envs, replayed
    from the same reset seeds with the rollout's actions."""
    T, N = actions.shape[:2]
    obs, rew = np.zeros((T + 1, N, 3)), np.zeros((T, N))
    for i in range(N):
        env = gym.make("Pendulum-v1")
        obs[0, i], _ = env.reset(seed=seed + i)
        for t in range(T):
            o, r, te, tr, _ = env.step(np.clip(actions[t, i], -2, 2))
            assert not (te or tr)
            obs[t + 1, i], rew[t, i] = o, r
    return obs, rew


def norm_agent(**kw):
    return ppo("Pendulum-v1", seed=3, num_envs=2, n_steps=48, batch_size=48, normalize_obs=True,
               normalize_reward=True, **kw)


def _ref_scaled_rewards(raw_rew, gamma):
    """Each batch's rewards / sqrt(var(every discounted return up to the end of that batch) + eps),
    clipped at 10; the return accumulator runs on across batches (Pendulum never ends here)."""
    ret, history, out = np.zeros(raw_rew.shape[2]), [], []
    for batch in raw_rew:
        for r in batch:
            ret = gamma * ret + r
            history.extend(ret)
        _, var = _ref_mean_var(np.array(history))
        out.append(np.clip(batch / np.sqrt(var + 1e-8), -10, 10))
    return out


def test_ppo_pendulum_obs_and_reward_normalisation_match_reference():
    """Learner-side normalisers: the policy acts with the statistics of every earlier batch
    (frozen during a rollout), and ``absorb`` folds each batch into them."""
    agent = norm_agent()
    agent.collector = agent.make_collector()
    T, N = 48, 2
    rollouts, batches = [], []
    for _ in range(2):
        rollouts.append(agent.collector.collect_steps(agent.behaviour_policy(), T))
        batches.append(agent.absorb(rollouts[-1]))
    raw_obs, raw_rew = _replay_pendulum(3, np.concatenate([r.actions for r in rollouts]))
    for k, (r, b) in enumerate(zip(rollouts, batches)):
        raw = raw_obs[k * T:(k + 1) * T]
        np.testing.assert_allclose(r.raw_obs, raw, rtol=1e-6, atol=1e-6)
        # network inputs: normalised with the statistics of all raw observations of the earlier
        # batches (none for the first: mean 0, var 1), clipped at +-clip_obs, float32
        mean, var = _ref_mean_var(raw_obs[:k * T].reshape(-1, 3)) if k else (np.zeros(3), np.ones(3))
        expected = np.clip((raw - mean) / np.sqrt(var + 1e-8), -10, 10)
        assert b.obs.dtype == np.float32
        np.testing.assert_allclose(b.obs, expected, rtol=1e-4, atol=1e-4, err_msg=f"batch {k}")
        np.testing.assert_array_equal(b.obs, r.obs)  # absorb leaves the observations as acted on
        np.testing.assert_allclose(b.next_obs[:-1], b.obs[1:], rtol=1e-6)
        last = np.clip((raw_obs[(k + 1) * T] - mean) / np.sqrt(var + 1e-8), -10, 10)
        np.testing.assert_allclose(b.next_obs[-1], last, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(r.rewards, raw_rew[k * T:(k + 1) * T], rtol=1e-6)  # collected unscaled
    mean, var = _ref_mean_var(raw_obs[:2 * T].reshape(-1, 3))
    np.testing.assert_allclose(agent.obs_normalizer.rms.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(agent.obs_normalizer.rms.var, var, rtol=1e-6)
    expected = _ref_scaled_rewards(raw_rew.reshape(2, T, N), agent.gamma)
    for k, b in enumerate(batches):
        np.testing.assert_allclose(b.rewards, expected[k], rtol=1e-5, atol=1e-6, err_msg=f"batch {k}")
        assert b.rewards.dtype == np.float32
    assert np.abs(batches[1].rewards).max() < np.abs(raw_rew).max()  # actually rescaled
    m = agent.update(batches[1], 0.0)
    assert all(np.isfinite(m[k]) for k in ("loss/policy", "loss/value"))


def test_snapshot_acts_like_the_collector_with_normalised_observations():
    """A policy snapshot carries the normaliser's statistics: taken before a rollout, it gives the
    collector's actions on the raw observations (the learner updates the statistics only after)."""
    agent = norm_agent(total_steps=96)
    train(agent)
    snap = agent.policy_snapshot()
    batch = agent.collector.collect_steps(agent.behaviour_policy(), 16)
    acted = np.stack([snap(raw)[0] for raw in batch.raw_obs])  # one call per step, as the collector
    np.testing.assert_array_equal(acted, batch.actions)


@pytest.mark.parametrize("mode", ["steps", "episodes"])
def test_normalised_next_obs_matches_next_step_obs(mode):
    if mode == "steps":
        agent = norm_agent()
        batch = collect(agent)
    else:
        agent = REINFORCE("Pendulum-v1", **{**QUIET, "seed": 3, "batch_size": 100, "normalize_obs": True})
        batch = collect(agent)
    inner = ~(batch.terminated | batch.truncated)[:-1] & batch.valid[1:]
    assert inner.sum() > 40
    np.testing.assert_allclose(batch.next_obs[:-1][inner], batch.obs[1:][inner], rtol=1e-6, atol=1e-6)


def test_ppo_checkpoint_restores_normalisers(tmp_path):
    agent = norm_agent(total_steps=192)
    train(agent)
    assert agent.train_state["env_steps"] == 192
    raw = np.random.default_rng(0).uniform([-1, -1, -8], [1, 1, 8], size=(32, 3)).astype(np.float32)
    path = tmp_path / "ppo.pt"
    agent.save(path)
    loaded = PPO.load(path)
    for k in ("mean", "var", "count"):
        np.testing.assert_array_equal(loaded.obs_normalizer.state_dict()[k], agent.obs_normalizer.state_dict()[k])
    np.testing.assert_array_equal(loaded.predict(raw), agent.predict(raw))
    np.testing.assert_array_equal(loaded.predict(raw[0]), agent.predict(raw[0]))
    # predicting does not move the statistics
    np.testing.assert_array_equal(loaded.obs_normalizer.rms.mean, agent.obs_normalizer.rms.mean)
    assert loaded.obs_normalizer.rms.count == agent.obs_normalizer.rms.count == PPO.load(path).obs_normalizer.rms.count
    # control: the statistics matter (a fresh normaliser would predict differently)
    reset = PPO.load(path)
    reset.obs_normalizer.load_state_dict({"mean": np.zeros(3), "var": np.ones(3), "count": 1e-4})
    assert not np.array_equal(reset.predict(raw), agent.predict(raw))
    # the reward scaler's running statistics come back when training resumes
    train(loaded)  # total_steps already reached: builds the collector and restores state only
    want, got = agent.reward_scaler.state_dict(), loaded.reward_scaler.state_dict()
    assert got["rms"]["count"] == want["rms"]["count"] > 1
    np.testing.assert_array_equal(got["rms"]["var"], want["rms"]["var"])
    np.testing.assert_array_equal(got["ret"], want["ret"])
