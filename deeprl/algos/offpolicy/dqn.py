"""Deep Q-learning (Mnih et al. 2015) and its Rainbow extensions; CS285 lectures 7-8.

Every iteration collects ``train_freq`` steps per env with an epsilon-greedy policy into a
replay buffer, then takes ``gradient_steps`` steps on

    L = E_(s,a,R,gamma^m,s') ~ D [ w * loss( Q(s, a) - (R + gamma^m max_a' Q_target(s', a')) ) ]

with Huber or squared loss, a target network updated every ``target_update_interval`` env
steps (hard copy, or Polyak averaging with ``tau < 1``) and gradient-norm clipping. Switches:

- ``double_q``: a* = argmax_a' Q(s', a') from the online network, evaluated by the target.
- ``dueling``: Q = V(s) + A(s, a) - mean_a A(s, a).
- ``n_step``: R is the n-step discounted reward sum (the buffer stops at episode ends).
- ``prioritized``: proportional prioritized replay; w are the importance weights, beta is
  annealed to 1 over training and priorities are |TD error| (or the C51 cross-entropy).
- ``noisy``: factorised Gaussian noisy layers explore instead of epsilon (epsilon set to 0).
- ``distributional``: C51, a categorical return distribution on ``n_atoms`` atoms in
  [v_min, v_max], trained by cross-entropy to the projected target distribution.

The ``rainbow`` preset turns all of them on.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.offpolicy._common import (
    check_off_policy_run,
    replay_spec_of,
    sync_target_per_env_steps,
    target_copy,
)
from deeprl.core.config import param
from deeprl.core.errors import ConfigError
from deeprl.core.targets import categorical_projection, q_learning_target
from deeprl.core.types import PRIORITIES
from deeprl.nn.acting import Policy, RandomPolicy, TorchSampledPolicy, as_tensor, batch_size_of
from deeprl.nn.flat import FlatParams, fast_adam_kwargs
from deeprl.nn.networks import ACTIVATIONS
from deeprl.nn.numpy_actor import numpy_q_values
from deeprl.nn.optim import Adam
from deeprl.nn.qnets import QNetwork


@dataclass
class DQNConfig:
    buffer_size: int = param(1_000_000, "replay buffer capacity (transitions)", low=2)
    learning_starts: int = param(100, "env steps of uniform random actions before learning starts", low=0)
    batch_size: int = param(32, "minibatch size", low=1)
    learning_rate: float = param(1e-4, "Adam learning rate", low=0.0, low_open=True, aliases=("lr",))
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    train_freq: int = param(4, "env steps per env between updates", low=1)
    gradient_steps: int = param(1, "gradient steps per update (-1: as many as env steps collected)", low=-1)
    target_update_interval: int = param(10_000, "env steps between target-network updates", low=1)
    tau: float = param(1.0, "target update rate (1: hard copy, < 1: Polyak averaging)", low=0.0, high=1.0,
                       low_open=True)
    exploration_fraction: float = param(0.1, "fraction of training over which epsilon decays", low=0.0,
                                        high=1.0)
    exploration_initial_eps: float = param(1.0, "initial epsilon", low=0.0, high=1.0)
    exploration_final_eps: float = param(0.05, "final epsilon", low=0.0, high=1.0)
    loss: str = param("huber", "TD loss", choices=("huber", "mse"))
    max_grad_norm: float = param(10.0, "clip the global gradient norm (0: off)", low=0.0)
    hidden_sizes: tuple[int, ...] = param((64, 64), "hidden layers of the Q-network (after the CNN for "
                                          "images)", low=1)
    activation: str = param("relu", "hidden activation", choices=tuple(ACTIVATIONS))
    adam_eps: float = param(1e-8, "Adam epsilon", low=0.0, low_open=True)
    double_q: bool = param(False, "double Q-learning target")
    dueling: bool = param(False, "dueling value/advantage streams")
    n_step: int = param(1, "n-step returns", low=1)
    prioritized: bool = param(False, "prioritized experience replay")
    priority_alpha: float = param(0.6, "prioritization exponent alpha", low=0.0)
    priority_beta: float = param(0.4, "initial importance-sampling exponent (annealed to 1)", low=0.0, high=1.0)
    priority_eps: float = param(1e-6, "added to |TD error| for priorities", low=0.0, low_open=True)
    noisy: bool = param(False, "noisy linear layers for exploration (epsilon is then 0)")
    noisy_sigma0: float = param(0.5, "initial noise scale sigma_0 of noisy layers", low=0.0)
    distributional: bool = param(False, "C51 categorical return distribution")
    n_atoms: int = param(51, "atoms of the return distribution", low=2)
    v_min: float = param(-10.0, "smallest return atom")
    v_max: float = param(10.0, "largest return atom")
    clip_rewards: bool = param(False, "learn from sign(r) (Atari); logged returns stay unclipped")


class DQN(Agent):
    name = "dqn"
    Config = DQNConfig
    action_spaces = (spaces.Discrete,)
    loop = "replay"
    log_every = 1000
    default_torch_threads = 2

    def build(self):
        c = self.cfg
        check_off_policy_run(self)
        if c.distributional and c.v_max <= c.v_min:
            raise ConfigError(f"v_max ({c.v_max}) must be greater than v_min ({c.v_min})")
        self.n_actions = int(self.act_space.n)
        self.q_net = QNetwork(self.obs_space, self.n_actions, c.hidden_sizes, c.activation, c.dueling, c.noisy,
                              c.noisy_sigma0, c.n_atoms if c.distributional else 1).to(self.device)
        self.q_target, self.target_flat = target_copy(self.q_net)
        self.flat = FlatParams(self.q_net)
        self.optimizer = Adam([self.flat.param], lr=c.learning_rate, eps=c.adam_eps,
                                          **fast_adam_kwargs(self.device))
        self.support = torch.linspace(c.v_min, c.v_max, c.n_atoms, device=self.device)

    def modules(self):
        return {"q_net": self.q_net, "q_target": self.q_target, "optimizer": self.optimizer}

    def rollout_spec(self):
        return "steps", self.cfg.train_freq

    def replay_spec(self):
        c = self.cfg
        # Uniform replay without noisy nets: a phase's minibatches are drawn in one block and the
        # fixed target network evaluates all their next states in one pass (see update).
        presample = 1 if c.prioritized or c.noisy else max(1, PRESAMPLE_ROWS // c.batch_size)
        return replay_spec_of(c, prioritized=c.prioritized, priority_alpha=c.priority_alpha,
                              priority_beta=c.priority_beta, priority_eps=c.priority_eps,
                              sign_rewards=c.clip_rewards, minibatches_per_update=presample)

    # -- acting -------------------------------------------------------------------------------
    def epsilon_schedule(self) -> EpsilonSchedule:
        c = self.cfg
        return EpsilonSchedule(c.exploration_initial_eps, c.exploration_final_eps,
                               max(c.exploration_fraction * self.run.total_steps, 1.0), off=c.noisy)

    def epsilon(self, step: int) -> float:
        return self.epsilon_schedule()(step)

    def q_values(self, obs):
        return q_values(self.q_net, obs, self.support if self.cfg.distributional else None)

    def act(self, obs, deterministic: bool = False):
        self.q_net.set_noise(not deterministic)
        if self.cfg.noisy and not deterministic:
            self.q_net.reset_noise()
        a = self.q_values(obs).argmax(-1)
        self.q_net.set_noise(True)
        return a, None

    def behaviour_policy(self):
        """Epsilon-greedy with epsilon decayed per env step (uniform random before learning starts)."""
        c = self.cfg
        q_numpy = numpy_q_values(self.q_net) if self.device.type == "cpu" else None  # cheaper for a few envs
        greedy = ArgmaxQ(q_numpy) if q_numpy is not None else \
            TorchGreedyQ(self.q_net, self.support if c.distributional else None, c.noisy, self.device)
        return EpsilonGreedyPolicy(greedy, self.n_actions, self.epsilon_schedule(), self.train_state["env_steps"],
                                   c.learning_starts, RandomPolicy(self.act_space, self.rng), self.rng)

    # -- learning -----------------------------------------------------------------------------
    def observe(self, rollout):
        """Target updates every ``target_update_interval`` env steps; epsilon for the row."""
        c, steps = self.cfg, self.train_state["env_steps"]
        sync_target_per_env_steps(self.target_flat, self.flat, steps, int(rollout.rewards.size),
                                  c.target_update_interval, c.tau)
        return {"train/epsilon": self.epsilon(steps)}

    def update(self, batch, progress) -> dict:
        """Gradient steps on ``batch``: one minibatch (prioritized or noisy), or a block of
        ``len(batch) / batch_size`` minibatches of uniform replay. The target network is fixed
        during a block: it evaluates all their next states at once (one large forward pass)."""
        B = self.cfg.batch_size
        k = len(batch.actions) // B
        if k == 1:
            return self.gradient_step(batch)
        with torch.no_grad(), self.autocast():
            next_target = self.q_target(batch.next_obs)
        metrics: dict = {}
        for i in range(k):
            sl = slice(i * B, (i + 1) * B)
            metrics.update(self.gradient_step(_rows(batch, sl), next_target[sl]))
        return metrics

    def gradient_step(self, b, next_target=None) -> dict:
        """One step on minibatch ``b``; ``next_target`` is Q_target(b.next_obs) if precomputed."""
        with self.autocast():
            return self._gradient_step(b, next_target)

    def _gradient_step(self, b, next_target) -> dict:
        c = self.cfg
        if c.noisy:
            self.q_net.reset_noise()
            self.q_target.reset_noise()
        loss, info = dqn_loss(self.q_net, self.q_target, b, double_q=c.double_q, loss=c.loss,
                              support=self.support if c.distributional else None, next_target=next_target)
        self.flat.zero_grad()
        loss.backward()
        if c.max_grad_norm > 0:
            self.flat.clip_grad_norm_(c.max_grad_norm)
        self.optimizer.step()
        metrics = {"loss/q": loss.detach(), "train/q_mean": info["q_mean"]}
        if c.prioritized:
            metrics[PRIORITIES] = info["priority"]  # the replay loop updates the buffer
        return metrics


def q_values(q_net, obs, support=None):
    """Q(s, .) of a Q-network; for C51 (``support`` z_1..z_K) the mean of the return distribution."""
    out = q_net(obs)
    return (out.softmax(-1) * support).sum(-1) if support is not None else out


@dataclass(frozen=True)
class EpsilonSchedule:
    """epsilon(step): linear from ``initial`` to ``final`` over ``decay_steps`` env steps, then
    constant; 0 when ``off`` (noisy nets explore by their noise)."""

    initial: float
    final: float
    decay_steps: float
    off: bool = False

    def __call__(self, step: int) -> float:
        if self.off:
            return 0.0
        frac = min(step / self.decay_steps, 1.0)
        return self.initial + frac * (self.final - self.initial)


class ArgmaxQ:
    """Greedy actions of a NumPy Q-function (deeprl.nn.numpy_actor.NumpyQ)."""

    def __init__(self, q):
        self.q = q

    def __call__(self, obs):
        return self.q(obs).argmax(-1)


class TorchGreedyQ(TorchSampledPolicy):
    """Greedy actions of a torch Q-network (images, C51, noisy nets: fresh noise per call, drawn
    through torch)."""

    def __init__(self, q_net, support, noisy: bool, device):
        self.q_net, self.support, self.noisy, self.device = q_net, support, noisy, device

    def __call__(self, obs):
        with torch.inference_mode(), self.sampling():
            if self.noisy:
                self.q_net.reset_noise()
            return q_values(self.q_net, as_tensor(obs, self.device), self.support).argmax(-1).cpu().numpy()


class EpsilonGreedyPolicy(Policy):
    """Epsilon-greedy on ``greedy(obs) -> actions``, epsilon = ``schedule(step)`` with ``step``
    advancing by the batch size at each call; uniform random (``explore``) before
    ``learning_starts`` env steps."""

    def __init__(self, greedy, n_actions: int, schedule: EpsilonSchedule, step: int, learning_starts: int,
                 explore: RandomPolicy, rng: np.random.Generator):
        self.greedy, self.n_actions, self.schedule = greedy, n_actions, schedule
        self.step, self.learning_starts, self.explore, self.rng = step, learning_starts, explore, rng

    def snapshot(self):
        snap = copy.deepcopy(self)
        if isinstance(self.greedy, TorchSampledPolicy):  # noisy nets: the noise's stream too
            snap.greedy = self.greedy.snapshot()
        return snap

    def __call__(self, obs):
        step, n = self.step, batch_size_of(obs)
        self.step += n
        if step < self.learning_starts:
            return self.explore(obs)
        greedy = self.greedy(obs)
        eps = self.schedule(step)
        if eps > 0:
            explore = self.rng.random(n) < eps
            greedy = np.where(explore, self.rng.integers(0, self.n_actions, n), greedy)
        return greedy, None


def dqn_loss(q_net, q_target, batch, *, double_q: bool = False, loss: str = "huber", support=None,
             next_target=None):
    """The (Rainbow) DQN loss on one replay minibatch; returns ``(loss, info)``.

    ``batch`` has ``obs``, ``actions`` (B,), ``rewards`` R (n-step sums), ``discounts`` gamma^m
    (zero after a termination), ``next_obs`` and ``weights`` (PER importance weights or None).
    With y = R + gamma^m max_a' Q_phi'(s', a')  (``double_q``: Q_phi'(s', argmax_a' Q_phi(s', a'))),

        L = 1/B sum_i w_i l(Q_phi(s_i, a_i) - y_i),   l = Huber (``loss="huber"``) or square.

    C51 (``support`` z_1..z_K given, ``q_net`` returning (B, A, K) logits):
    L = -1/B sum_i w_i sum_j m_ij log p_phi(z_j | s_i, a_i), m = Phi(R + gamma^m z, p_phi'(s', a*)) the
    target distribution projected onto the support, a* = argmax_a' E[Z_phi'(s', a')] (double:
    by the online network). Dueling and noisy nets are properties of ``q_net``/``q_target``
    (draw their noise before calling). ``next_target`` is Q_phi'(s') if already computed.

    info (detached): ``q_mean``; ``priority`` (B,) for prioritized replay: the TD error Q - y,
    or the per-sample cross-entropy for C51; ``td_error`` (B,) Q - y (not for C51).
    """
    obs, next_obs, actions = batch.obs, batch.next_obs, batch.actions.long()
    if next_target is None:
        with torch.no_grad():
            next_target = q_target(next_obs)
    if double_q:  # one forward pass over s and s' for the online network
        B = actions.shape[0]
        both = q_net(_cat(obs, next_obs))
        out, next_online = both[:B], both[B:].detach()
    else:
        out, next_online = q_net(obs), None

    info = {}
    if support is None:
        q = out.gather(1, actions.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            y = q_learning_target(batch.rewards, batch.discounts, next_target, next_online)
        td = q - y
        per_sample = F.huber_loss(q, y, reduction="none") if loss == "huber" else td.pow(2)
        priority = td
        info["td_error"] = td.detach()
    else:
        log_p = _take_action(out, actions).log_softmax(-1)
        with torch.no_grad():
            p_next = next_target.softmax(-1)
            select = next_online.softmax(-1) if next_online is not None else p_next
            a_star = (select * support).sum(-1).argmax(-1)
            m = categorical_projection(_take_action(p_next, a_star), batch.rewards, batch.discounts, support)
        per_sample = -(m * log_p).sum(-1)
        priority = per_sample
        q = (log_p.exp() * support).sum(-1)
    out_loss = (per_sample * batch.weights).mean() if batch.weights is not None else per_sample.mean()
    info["q_mean"] = q.detach().mean()
    info["priority"] = priority.detach()
    return out_loss, info


PRESAMPLE_ROWS = 16_384  # at most this many transitions drawn and target-evaluated at once


def _rows(b, sl):
    """Rows ``sl`` of a replay batch (views)."""
    take = lambda x: {k: v[sl] for k, v in x.items()} if isinstance(x, dict) else x[sl]  # noqa: E731
    return b._replace(obs=take(b.obs), actions=b.actions[sl], rewards=b.rewards[sl], discounts=b.discounts[sl],
                      next_obs=take(b.next_obs), weights=None, indices=b.indices[sl])


def _take_action(x, actions):
    """x[i, actions[i]] for (B, A, K) ``x``: (B, K)."""
    return x.gather(1, actions.view(-1, 1, 1).expand(-1, 1, x.shape[-1])).squeeze(1)


def _cat(a, b):
    if isinstance(a, dict):
        return {k: torch.cat([a[k], b[k]]) for k in a}
    return torch.cat([a, b])
