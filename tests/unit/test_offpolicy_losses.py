"""The off-policy loss functions (dqn_loss, ddpg_*, td3_*, sac_*, naf_loss, soft_q_loss) against
brute-force references: per-sample Python/NumPy loops over tiny hand-made float64 networks
and batches with terminal rows, n-step discounts and importance weights (CS285 lectures 7-8,
19). Each reference is written from the equation, not from the library's code; a few checks
pin down the plausible mutants (no (1 - done), online instead of target network, max instead
of min, the wrong sign of the temperature gradient)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from deeprl.algos.offpolicy.ddpg import ddpg_actor_loss, ddpg_critic_loss
from deeprl.algos.offpolicy.dqn import dqn_loss
from deeprl.algos.offpolicy.naf import naf_loss
from deeprl.algos.offpolicy.sac import (
    ScalarAdam,
    sac_actor_loss,
    sac_critic_loss,
    sac_temperature_grad,
    sac_temperature_loss,
)
from deeprl.algos.offpolicy.soft_q import soft_q_loss
from deeprl.algos.offpolicy.td3 import td3_actor_loss, td3_critic_loss
from deeprl.data.replay import ReplayBatch

D = torch.float64
GAMMA = 0.9
OBS_DIM = 3


def npy(t):
    return t.detach().numpy().astype(np.float64)


def make_batch(rng, B=6, act=None, n=1, weights=False):
    """Rows 1 and 4 terminate; discounts are gamma^n (1 - done) as the replay buffer returns them."""
    obs = rng.normal(size=(B, OBS_DIM))
    next_obs = rng.normal(size=(B, OBS_DIM))
    rewards = rng.normal(size=B)
    done = np.zeros(B)
    done[[1, 4]] = 1.0
    actions = act(rng, B)
    w = rng.uniform(0.2, 1.0, B) if weights else None
    t = lambda x: None if x is None else torch.as_tensor(x, dtype=D)
    batch = ReplayBatch(
        t(obs), torch.as_tensor(actions), t(rewards), t(GAMMA**n * (1.0 - done)), t(next_obs), t(w), np.arange(B)
    )
    return batch, dict(obs=obs, next_obs=next_obs, r=rewards, done=done, a=actions, w=w, disc=GAMMA**n)


def huber(x):
    return 0.5 * x * x if abs(x) < 1.0 else abs(x) - 0.5


# -- hand-made networks -----------------------------------------------------------------------
class LinearQ(nn.Module):
    """Q(s, .) = s W + b: (B, A), or (B, A, K) logits when ``atoms`` is given."""

    def __init__(self, seed, n_actions=3, atoms=None):
        super().__init__()
        g = np.random.default_rng(seed)
        out = n_actions * (atoms or 1)
        self.W = nn.Parameter(torch.as_tensor(g.normal(size=(OBS_DIM, out)), dtype=D))
        self.b = nn.Parameter(torch.as_tensor(g.normal(size=out), dtype=D))
        self.n_actions, self.atoms = n_actions, atoms

    def forward(self, obs):
        out = obs @ self.W + self.b
        return out.view(-1, self.n_actions, self.atoms) if self.atoms else out

    def np(self, obs):
        out = obs @ npy(self.W) + npy(self.b)
        return out.reshape(len(obs), self.n_actions, self.atoms) if self.atoms else out


class QuadCritic(nn.Module):
    """E critics Q_e(s, a) = w_e . s + u_e . a - |a - c_e|^2 / 2: forward(obs, act, members) -> (E, B)."""

    def __init__(self, seed, E=2, act_dim=2):
        super().__init__()
        g = np.random.default_rng(seed)
        self.w = nn.Parameter(torch.as_tensor(g.normal(size=(E, OBS_DIM)), dtype=D))
        self.u = nn.Parameter(torch.as_tensor(g.normal(size=(E, act_dim)), dtype=D))
        self.c = nn.Parameter(torch.as_tensor(g.normal(size=(E, act_dim)), dtype=D))
        self.members = E

    def forward(self, obs, actions, members=slice(None)):
        w, u, c = self.w[members], self.u[members], self.c[members]
        diff = actions.unsqueeze(0) - c.unsqueeze(1)
        return (obs @ w.T).T + (actions @ u.T).T - 0.5 * diff.pow(2).sum(-1)

    def np_q(self, e, s, a):
        """Q_e(s, a) for one state and action, written out."""
        w, u, c = npy(self.w)[e], npy(self.u)[e], npy(self.c)[e]
        return float(w @ s + u @ a - 0.5 * np.sum((a - c) ** 2))


class TanhActor(nn.Module):
    """mu(s) = center + scale * tanh(s W)."""

    def __init__(self, seed, act_dim=2):
        super().__init__()
        g = np.random.default_rng(seed)
        self.W = nn.Parameter(torch.as_tensor(g.normal(size=(OBS_DIM, act_dim)), dtype=D))
        self.register_buffer("scale", torch.tensor([2.0, 0.5], dtype=D))
        self.register_buffer("center", torch.tensor([0.0, 0.25], dtype=D))

    def forward(self, obs):
        return self.center + self.scale * torch.tanh(obs @ self.W)

    def np_mu(self, s):
        return npy(self.center) + npy(self.scale) * np.tanh(s @ npy(self.W))


class Gaussian:
    """N(s W, std^2 I), with the interface of the library's policy distributions."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def log_prob(self, a):
        return (-0.5 * ((a - self.mean) / self.std) ** 2 - math.log(self.std) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(self):
        with torch.no_grad():
            return self.mean + self.std * torch.randn_like(self.mean)

    def rsample_with_log_prob(self):
        a = self.mean + self.std * torch.randn_like(self.mean)
        return a, self.log_prob(a)


class GaussActor(nn.Module):
    STD = 0.7

    def __init__(self, seed, act_dim=2):
        super().__init__()
        g = np.random.default_rng(seed)
        self.W = nn.Parameter(torch.as_tensor(g.normal(size=(OBS_DIM, act_dim)) * 0.5, dtype=D))

    def forward(self, obs):
        return Gaussian(obs @ self.W, self.STD)

    def np_logp(self, s, a):
        z = (a - s @ npy(self.W)) / self.STD
        return float(np.sum(-0.5 * z * z - math.log(self.STD) - 0.5 * math.log(2 * math.pi)))


class NAFNet(nn.Module):
    """(V, mu, P): V = s.v, mu = tanh(s M), P = A A^T + I with A = reshape(s N) (d x d)."""

    def __init__(self, seed, d=2):
        super().__init__()
        g = np.random.default_rng(seed)
        self.v = nn.Parameter(torch.as_tensor(g.normal(size=OBS_DIM), dtype=D))
        self.M = nn.Parameter(torch.as_tensor(g.normal(size=(OBS_DIM, d)), dtype=D))
        self.N = nn.Parameter(torch.as_tensor(g.normal(size=(OBS_DIM, d * d)), dtype=D))
        self.d = d

    def forward(self, obs):
        A = (obs @ self.N).view(-1, self.d, self.d)
        return obs @ self.v, torch.tanh(obs @ self.M), A @ A.transpose(1, 2) + torch.eye(self.d, dtype=D)

    def np_out(self, s):
        A = (s @ npy(self.N)).reshape(self.d, self.d)
        return float(s @ npy(self.v)), np.tanh(s @ npy(self.M)), A @ A.T + np.eye(self.d)


def discrete(rng, B):
    return rng.integers(0, 3, B)


def box(rng, B):
    return rng.uniform(-1.0, 1.0, (B, 2))


def assert_detached(info):
    for v in info.values():
        assert not (isinstance(v, torch.Tensor) and v.requires_grad)


# -- DQN --------------------------------------------------------------------------------------
def dqn_reference(online, target, x, double, loss):
    q_s, q_next_t, q_next_o = online.np(x["obs"]), target.np(x["next_obs"]), online.np(x["next_obs"])
    td, per = [], []
    for i in range(len(x["r"])):
        a_star = int(np.argmax(q_next_o[i])) if double else int(np.argmax(q_next_t[i]))
        y = x["r"][i] + x["disc"] * (1.0 - x["done"][i]) * q_next_t[i, a_star]
        delta = q_s[i, x["a"][i]] - y
        td.append(delta)
        per.append(huber(delta) if loss == "huber" else delta * delta)
    w = x["w"] if x["w"] is not None else np.ones(len(per))
    q_mean = np.mean([q_s[i, x["a"][i]] for i in range(len(per))])
    return float(np.mean(np.array(per) * w)), np.array(td), q_mean


@pytest.mark.parametrize("double", [False, True])
@pytest.mark.parametrize("loss", ["huber", "mse"])
@pytest.mark.parametrize("n,weights", [(1, False), (3, True)])
def test_dqn_loss_matches_per_sample_loop(double, loss, n, weights):
    rng = np.random.default_rng(0)
    online, target = LinearQ(1), LinearQ(2)
    batch, x = make_batch(rng, act=discrete, n=n, weights=weights)
    out, info = dqn_loss(online, target, batch, double_q=double, loss=loss)
    ref, td, q_mean = dqn_reference(online, target, x, double, loss)
    assert out.item() == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(npy(info["td_error"]), td, rtol=1e-12)
    np.testing.assert_allclose(npy(info["priority"]), td, rtol=1e-12)  # PER priorities |delta| come from these
    assert info["q_mean"].item() == pytest.approx(q_mean, rel=1e-12)
    assert_detached(info)
    out.backward()
    assert online.W.grad is not None and target.W.grad is None  # the target network is a constant


def test_dqn_mutants_are_distinguished():
    rng = np.random.default_rng(3)
    online, target = LinearQ(1), LinearQ(2)
    batch, x = make_batch(rng, act=discrete)
    _, info = dqn_loss(online, target, batch, loss="mse")
    y = online.np(x["obs"])[np.arange(6), x["a"]] - npy(info["td_error"])  # y = Q(s, a) - delta
    # terminal rows do not bootstrap: y = r exactly (a target without (1 - done) would not)
    np.testing.assert_allclose(y[[1, 4]], x["r"][[1, 4]], rtol=0, atol=1e-12)
    # the bootstrap uses the target network, not the online one
    wrong = x["r"] + GAMMA * (1 - x["done"]) * online.np(x["next_obs"]).max(1)
    assert not np.allclose(y, wrong)
    # double Q picks the action by the online network: differs from the plain target here
    _, info_d = dqn_loss(online, target, batch, double_q=True, loss="mse")
    assert not torch.allclose(info["td_error"], info_d["td_error"])


def c51_projection_loop(p, r, disc, support):
    """Distribute the mass of each atom of r + disc * z onto its two neighbours (Bellemare et al. 2017)."""
    K = len(support)
    v_min, v_max = support[0], support[-1]
    dz = (v_max - v_min) / (K - 1)
    m = np.zeros(K)
    for j in range(K):
        tz = min(max(r + disc * support[j], v_min), v_max)
        b = (tz - v_min) / dz
        lo, hi = math.floor(b), math.ceil(b)
        if lo == hi:
            m[lo] += p[j]
        else:
            m[lo] += p[j] * (hi - b)
            m[hi] += p[j] * (b - lo)
    return m


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


@pytest.mark.parametrize("double", [False, True])
def test_dqn_c51_loss_matches_explicit_projection(double):
    rng = np.random.default_rng(1)
    K = 5
    support = np.linspace(-2.0, 2.0, K)
    online, target = LinearQ(4, atoms=K), LinearQ(5, atoms=K)
    batch, x = make_batch(rng, act=discrete, n=2, weights=True)
    # rewards that land exactly on atoms and beyond both ends of the support
    x["r"][:4] = [1.0, -5.0, 3.5, 0.0]
    batch = batch._replace(rewards=torch.as_tensor(x["r"], dtype=D))
    out, info = dqn_loss(online, target, batch, double_q=double, support=torch.as_tensor(support, dtype=D))

    logits, next_t, next_o = online.np(x["obs"]), target.np(x["next_obs"]), online.np(x["next_obs"])
    per, q = [], []
    for i in range(len(x["r"])):
        sel = next_o[i] if double else next_t[i]
        means = [softmax(sel[a]) @ support for a in range(3)]
        a_star = int(np.argmax(means))
        disc = x["disc"] * (1.0 - x["done"][i])
        m = c51_projection_loop(softmax(next_t[i, a_star]), x["r"][i], disc, support)
        assert m.sum() == pytest.approx(1.0)
        p = softmax(logits[i, x["a"][i]])
        per.append(-np.sum(m * np.log(p)))
        q.append(p @ support)
    assert out.item() == pytest.approx(float(np.mean(np.array(per) * x["w"])), rel=1e-10)
    np.testing.assert_allclose(npy(info["priority"]), per, rtol=1e-10)  # cross-entropy as priority
    assert info["q_mean"].item() == pytest.approx(np.mean(q), rel=1e-10)
    assert "td_error" not in info
    assert_detached(info)


def test_dqn_precomputed_next_target_is_used():
    rng = np.random.default_rng(2)
    online, target = LinearQ(1), LinearQ(2)
    batch, _ = make_batch(rng, act=discrete)
    ref, _ = dqn_loss(online, target, batch)
    with torch.no_grad():
        pre = target(batch.next_obs)
    out, _ = dqn_loss(online, None, batch, next_target=pre)
    assert out.item() == ref.item()


# -- DDPG / TD3 -------------------------------------------------------------------------------
def test_ddpg_losses_match_loop():
    rng = np.random.default_rng(4)
    critic, critic_t = QuadCritic(1, E=1), QuadCritic(2, E=1)
    actor, actor_t = TanhActor(3), TanhActor(4)
    batch, x = make_batch(rng, act=box, n=2)
    loss, info = ddpg_critic_loss(critic, critic_t, actor_t, batch)
    errs, qs = [], []
    for i in range(6):
        a_next = actor_t.np_mu(x["next_obs"][i])
        y = x["r"][i] + x["disc"] * (1 - x["done"][i]) * critic_t.np_q(0, x["next_obs"][i], a_next)
        q = critic.np_q(0, x["obs"][i], x["a"][i])
        errs.append((q - y) ** 2)
        qs.append(q)
    assert loss.item() == pytest.approx(np.mean(errs), rel=1e-12)
    assert info["q_mean"].item() == pytest.approx(np.mean(qs), rel=1e-12)
    assert_detached(info)

    a_loss, _ = ddpg_actor_loss(actor, critic, batch)
    ref = -np.mean([critic.np_q(0, x["obs"][i], actor.np_mu(x["obs"][i])) for i in range(6)])
    assert a_loss.item() == pytest.approx(ref, rel=1e-12)
    a_loss.backward()
    assert actor.W.grad is not None and critic.w.grad is None  # no gradient into the critic
    assert all(p.requires_grad for p in critic.parameters())  # and the critic is not left frozen


def td3_reference(critic, critic_t, actor_t, x, eps, sigma, clip, low, high, combine=min):
    scale = npy(actor_t.scale)
    losses, qs = np.zeros(2), []
    for i in range(6):
        noise = np.clip(eps[i] * sigma, -clip, clip)
        a_next = np.clip(actor_t.np_mu(x["next_obs"][i]) + noise * scale, low, high)
        q_next = combine(critic_t.np_q(0, x["next_obs"][i], a_next), critic_t.np_q(1, x["next_obs"][i], a_next))
        y = x["r"][i] + x["disc"] * (1 - x["done"][i]) * q_next
        for j in range(2):
            q = critic.np_q(j, x["obs"][i], x["a"][i])
            losses[j] += (q - y) ** 2 / 6
            qs.append(q)
    return losses.sum(), np.mean(qs)


def test_td3_critic_loss_matches_loop_and_draws_one_noise_sample():
    rng = np.random.default_rng(5)
    critic, critic_t = QuadCritic(1), QuadCritic(2)
    actor_t = TanhActor(4)
    batch, x = make_batch(rng, act=box, n=3)
    low, high = np.array([-2.0, -0.25]), np.array([2.0, 0.75])
    sigma, clip = 0.8, 0.5  # large noise, so the clip matters
    kw = dict(target_noise=sigma, target_noise_clip=clip, low=torch.as_tensor(low), high=torch.as_tensor(high))

    torch.manual_seed(7)
    eps = torch.randn_like(batch.actions).numpy()  # the stream the loss must consume
    after = torch.randn(3)
    torch.manual_seed(7)
    loss, info = td3_critic_loss(critic, critic_t, actor_t, batch, **kw)
    assert torch.equal(torch.randn(3), after)  # exactly one randn_like(actions) was drawn

    ref, q_mean = td3_reference(critic, critic_t, actor_t, x, eps, sigma, clip, low, high)
    assert np.abs(eps * sigma).max() > clip
    assert loss.item() == pytest.approx(ref, rel=1e-12)
    assert info["q_mean"].item() == pytest.approx(q_mean, rel=1e-12)
    assert_detached(info)
    # the clipped double-Q target takes the min: a max (or no noise clip) would give another loss
    assert loss.item() != pytest.approx(
        td3_reference(critic, critic_t, actor_t, x, eps, sigma, clip, low, high, combine=max)[0], rel=1e-6
    )
    assert loss.item() != pytest.approx(
        td3_reference(critic, critic_t, actor_t, x, eps, sigma, 10.0, low, high)[0], rel=1e-6
    )


def test_td3_actor_loss_uses_the_first_critic_only():
    rng = np.random.default_rng(6)
    critic, actor = QuadCritic(1), TanhActor(3)
    batch, x = make_batch(rng, act=box)
    loss, info = td3_actor_loss(actor, critic, batch)
    ref = [-np.mean([critic.np_q(j, x["obs"][i], actor.np_mu(x["obs"][i])) for i in range(6)]) for j in range(2)]
    assert loss.item() == pytest.approx(ref[0], rel=1e-12)
    assert ref[1] != pytest.approx(ref[0], rel=1e-6)
    loss.backward()
    assert actor.W.grad is not None and critic.w.grad is None
    assert all(p.requires_grad for p in critic.parameters())


# -- SAC --------------------------------------------------------------------------------------
@pytest.mark.parametrize("backup", ["min", "mean", "doubleq"])
def test_sac_critic_loss_matches_soft_target_loop(backup):
    rng = np.random.default_rng(7)
    critic, critic_t, actor = QuadCritic(1), QuadCritic(2), GaussActor(3)
    batch, x = make_batch(rng, act=box, n=2)
    alpha = 0.3
    torch.manual_seed(11)
    a_next = (batch.next_obs @ actor.W + GaussActor.STD * torch.randn(6, 2, dtype=D)).detach().numpy()
    torch.manual_seed(11)
    loss, info = sac_critic_loss(critic, critic_t, actor, batch, alpha, backup=backup)
    total, qs = 0.0, []
    for i in range(6):
        s2, a2 = x["next_obs"][i], a_next[i]
        qn = [critic_t.np_q(j, s2, a2) for j in range(2)]
        for j in range(2):
            if backup == "min":
                qt = min(qn)
            elif backup == "mean":
                qt = (qn[0] + qn[1]) / 2
            else:  # critic j bootstraps from the other target critic
                qt = qn[(j + 1) % 2]
            y = x["r"][i] + x["disc"] * (1 - x["done"][i]) * (qt - alpha * actor.np_logp(s2, a2))
            q = critic.np_q(j, x["obs"][i], x["a"][i])
            total += 0.5 * (q - y) ** 2 / 6
            qs.append(q)
    assert loss.item() == pytest.approx(total, rel=1e-12)
    assert info["q_mean"].item() == pytest.approx(np.mean(qs), rel=1e-12)
    assert_detached(info)


def test_sac_critic_subset_draws_members_from_rng():
    rng = np.random.default_rng(8)
    critic, critic_t, actor = QuadCritic(1, E=5), QuadCritic(2, E=5), GaussActor(3)
    batch, x = make_batch(rng, act=box)
    pick = np.random.default_rng(42).choice(5, 2, replace=False)
    torch.manual_seed(0)
    a_next = (batch.next_obs @ actor.W + GaussActor.STD * torch.randn(6, 2, dtype=D)).detach().numpy()
    torch.manual_seed(0)
    loss, _ = sac_critic_loss(critic, critic_t, actor, batch, 0.1, critic_subset=2, rng=np.random.default_rng(42))
    total = 0.0
    for i in range(6):
        s2, a2 = x["next_obs"][i], a_next[i]
        qt = min(critic_t.np_q(int(e), s2, a2) for e in pick)
        y = x["r"][i] + x["disc"] * (1 - x["done"][i]) * (qt - 0.1 * actor.np_logp(s2, a2))
        total += sum(0.5 * (critic.np_q(j, x["obs"][i], x["a"][i]) - y) ** 2 / 6 for j in range(5))
    assert loss.item() == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("q_reduce", ["min", "mean"])
def test_sac_reparam_actor_loss_matches_loop(q_reduce):
    rng = np.random.default_rng(9)
    critic, actor = QuadCritic(1, E=3), GaussActor(3)
    batch, x = make_batch(rng, act=box)
    alpha = 0.2
    torch.manual_seed(1)
    dist = actor(batch.obs)
    sample = (dist, *dist.rsample_with_log_prob())
    loss, info = sac_actor_loss(actor, critic, batch, alpha, policy_sample=sample, q_reduce=q_reduce)
    a_pi = npy(sample[1])
    terms, logps = [], []
    for i in range(6):
        qs = [critic.np_q(j, x["obs"][i], a_pi[i]) for j in range(3)]
        logp = actor.np_logp(x["obs"][i], a_pi[i])
        terms.append(alpha * logp - (min(qs) if q_reduce == "min" else np.mean(qs)))
        logps.append(logp)
    assert loss.item() == pytest.approx(np.mean(terms), rel=1e-12)
    assert info["entropy"].item() == pytest.approx(-np.mean(logps), rel=1e-12)
    assert_detached(info)
    # without a given sample it draws the same one from the same stream
    torch.manual_seed(1)
    again, _ = sac_actor_loss(actor, critic, batch, alpha, q_reduce=q_reduce)
    assert again.item() == loss.item()
    loss.backward()
    assert actor.W.grad is not None and critic.w.grad is None
    assert all(p.requires_grad for p in critic.parameters())


def test_sac_reinforce_actor_loss_and_gradient_match_loop():
    rng = np.random.default_rng(10)
    critic, actor = QuadCritic(1), GaussActor(3)
    batch, x = make_batch(rng, act=box)
    alpha, k, B = 0.5, 3, 6
    dist = actor(batch.obs)
    mean = npy(dist.mean)
    torch.manual_seed(2)
    samples = [npy(dist.mean + GaussActor.STD * torch.randn(B, 2, dtype=D)) for _ in range(k)]
    torch.manual_seed(2)
    loss, _ = sac_actor_loss(
        actor,
        critic,
        batch,
        alpha,
        policy_sample=(dist, None, torch.zeros(B, dtype=D)),
        gradient="reinforce",
        reinforce_samples=k,
    )
    soft = np.array(
        [
            [
                min(critic.np_q(j, x["obs"][i], samples[n][i]) for j in range(2))
                - alpha * actor.np_logp(x["obs"][i], samples[n][i])
                for i in range(B)
            ]
            for n in range(k)
        ]
    )
    adv = soft - soft.mean(0, keepdims=True)
    logp = np.array([[actor.np_logp(x["obs"][i], samples[n][i]) for i in range(B)] for n in range(k)])
    assert loss.item() == pytest.approx(-np.mean(adv * logp), rel=1e-12)
    # gradient: -1/(kB) sum adv * dlog pi/dW, dlog pi/dmean = (a - mean) / std^2, dmean/dW = s
    grad = np.zeros((OBS_DIM, 2))
    for n in range(k):
        for i in range(B):
            grad -= adv[n, i] * np.outer(x["obs"][i], (samples[n][i] - mean[i]) / GaussActor.STD**2) / (k * B)
    loss.backward()
    np.testing.assert_allclose(npy(actor.W.grad), grad, rtol=1e-10, atol=1e-12)
    assert critic.w.grad is None


def test_sac_temperature_loss_gradient_and_scalar_path():
    logp = torch.tensor([1.5, 2.5, 2.0], dtype=torch.float32)  # entropy estimate -2
    target_entropy = -1.0
    log_alpha = torch.tensor(0.3, dtype=D, requires_grad=True)
    loss, info = sac_temperature_loss(log_alpha, logp, target_entropy)
    assert loss.item() == pytest.approx(-0.3 * (2.0 - 1.0))
    loss.backward()
    grad = sac_temperature_grad(logp, target_entropy)
    assert isinstance(grad, float)
    assert grad == pytest.approx(log_alpha.grad.item()) == pytest.approx(-(2.0 - 1.0))
    assert info["entropy"].item() == pytest.approx(-2.0)
    # entropy (-2) below the target (-1): the temperature must rise
    assert ScalarAdam(0.1).step(0.3, grad) > 0.3


# -- NAF, soft Q ------------------------------------------------------------------------------
def test_naf_loss_matches_quadratic_advantage_loop():
    rng = np.random.default_rng(11)
    q_net, q_target = NAFNet(1), NAFNet(2)
    batch, x = make_batch(rng, act=lambda g, B: g.uniform([-2.0, 0.0], [2.0, 1.0], (B, 2)), n=2)
    center, half = np.array([0.0, 0.5]), np.array([2.0, 0.5])
    loss, info = naf_loss(q_net, q_target, batch, torch.as_tensor(center), torch.as_tensor(half))
    errs, qs, vs = [], [], []
    for i in range(6):
        v, mu, P = q_net.np_out(x["obs"][i])
        u = (x["a"][i] - center) / half
        adv = 0.0
        for p in range(2):
            for q in range(2):
                adv -= 0.5 * (u[p] - mu[p]) * P[p, q] * (u[q] - mu[q])
        y = x["r"][i] + x["disc"] * (1 - x["done"][i]) * q_target.np_out(x["next_obs"][i])[0]
        errs.append((v + adv - y) ** 2)
        qs.append(v + adv)
        vs.append(v)
    assert loss.item() == pytest.approx(np.mean(errs), rel=1e-12)
    assert info["q_mean"].item() == pytest.approx(np.mean(qs), rel=1e-12)
    assert info["v_mean"].item() == pytest.approx(np.mean(vs), rel=1e-12)
    assert_detached(info)
    loss.backward()
    assert q_target.v.grad is None


@pytest.mark.parametrize("loss_type", ["huber", "mse"])
def test_soft_q_loss_matches_logsumexp_loop(loss_type):
    rng = np.random.default_rng(12)
    online, target = LinearQ(1), LinearQ(2)
    batch, x = make_batch(rng, act=discrete, n=2)
    alpha = 2.0
    loss, info = soft_q_loss(online, target, batch, alpha, loss=loss_type)
    q_s, q_next = online.np(x["obs"]), target.np(x["next_obs"])
    per, qs, ents = [], [], []
    for i in range(6):
        v_next = alpha * math.log(sum(math.exp(q_next[i, a] / alpha) for a in range(3)))
        assert v_next > q_next[i].max()  # the soft maximum exceeds the hard one
        y = x["r"][i] + x["disc"] * (1 - x["done"][i]) * v_next
        d = q_s[i, x["a"][i]] - y
        per.append(huber(d) if loss_type == "huber" else d * d)
        qs.append(q_s[i, x["a"][i]])
        pi = softmax(q_s[i] / alpha)
        ents.append(-np.sum(pi * np.log(pi)))
    assert loss.item() == pytest.approx(np.mean(per), rel=1e-12)
    assert info["q_mean"].item() == pytest.approx(np.mean(qs), rel=1e-12)
    assert info["policy_entropy"].item() == pytest.approx(np.mean(ents), rel=1e-12)
    assert_detached(info)
