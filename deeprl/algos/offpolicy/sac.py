"""Soft Actor-Critic (Haarnoja et al. 2018, arXiv:1812.05905); CS285 lectures 8 and 19.

Maximum-entropy RL: maximise E[sum_t r_t + alpha H(pi(.|s_t))]. Each gradient step on a
replay minibatch (s, a, R, gamma^m, s'):

1. temperature (if ``autotune_alpha``): minimise -log(alpha) (log pi(a~|s) + H_target).
2. critics Q_1..Q_E: regress onto y = R + gamma^m (Q'(s', a') - alpha log pi(a'|s')), a' ~ pi(.|s'),
   where Q' combines the target critics by ``backup``: ``min`` (clipped double Q), ``mean``, or
   ``doubleq`` (each critic bootstraps from the other's target). With ``critic_subset`` M
   (REDQ, Chen et al. 2021) the min is over a random subset of M of the E target critics.
3. actor: minimise E_s[alpha log pi(a~|s) - Q(s, a~)], Q the min over critics (mean for REDQ),
   with the gradient by reparameterisation a~ = tanh(mu + sigma eps) (``actor_gradient=reparam``)
   or by the likelihood ratio with ``reinforce_samples`` actions per state and their mean
   soft value as baseline (``actor_gradient=reinforce``).
4. target critics: Polyak averaging with rate ``tau`` every ``target_update_interval`` steps.

The actor is a tanh-squashed Gaussian with state-dependent std scaled to the action bounds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.offpolicy._common import check_off_policy_run, polyak_, replay_spec_of, target_copy
from deeprl.algos.offpolicy.ddpg import frozen
from deeprl.core.config import param
from deeprl.core.errors import ConfigError
from deeprl.core.targets import ensemble_backup
from deeprl.nn.acting import ActorPolicy, RandomPolicy
from deeprl.nn.ensemble import QEnsemble
from deeprl.nn.flat import FlatParams, fast_adam_kwargs
from deeprl.nn.networks import ACTIVATIONS
from deeprl.nn.optim import Adam
from deeprl.nn.policies import Actor


@dataclass
class SACConfig:
    buffer_size: int = param(1_000_000, "replay buffer capacity (transitions)", low=2)
    learning_starts: int = param(100, "env steps of uniform random actions before learning starts", low=0)
    batch_size: int = param(256, "minibatch size", low=1)
    learning_rate: float = param(3e-4, "Adam learning rate (actor, critics, temperature)", low=0.0,
                                 low_open=True, aliases=("lr",))
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    tau: float = param(0.005, "Polyak rate of the target critics", low=0.0, high=1.0, low_open=True)
    train_freq: int = param(1, "env steps per env between updates", low=1)
    gradient_steps: int = param(1, "gradient steps per update (-1: as many as env steps collected)", low=-1)
    target_update_interval: int = param(1, "gradient steps between target updates", low=1)
    n_step: int = param(1, "n-step returns (the entropy bonus is added at the bootstrap step only)", low=1)
    alpha: float = param(1.0, "entropy temperature (initial value when autotuned)", low=0.0, low_open=True,
                         aliases=("temperature", "ent_coef"))
    autotune_alpha: bool = param(True, "tune alpha towards the target entropy")
    target_entropy: float | None = param(None, "target entropy (None: -dim(A))")
    num_critics: int = param(2, "critics in the ensemble (2: clipped double Q; 10: REDQ)", low=1)
    critic_subset: int | None = param(None, "REDQ: min over a random subset of this many target critics",
                                      low=1)
    backup: str = param("min", "how target critics combine", choices=("min", "mean", "doubleq"))
    actor_gradient: str = param("reparam", "actor gradient estimator", choices=("reparam", "reinforce"))
    reinforce_samples: int = param(4, "actions per state for actor_gradient=reinforce", low=1)
    hidden_sizes: tuple[int, ...] = param((256, 256), "hidden layers of actor and critics", low=1)
    activation: str = param("relu", "hidden activation", choices=tuple(ACTIVATIONS))


class SAC(Agent):
    name = "sac"
    Config = SACConfig
    loop = "replay"
    action_spaces = (spaces.Box,)
    log_every = 1000
    default_torch_threads = 2

    def build(self):
        c = self.cfg
        check_off_policy_run(self)
        if c.backup == "doubleq" and c.num_critics != 2:
            raise ConfigError(f"backup=doubleq needs num_critics=2, got {c.num_critics}")
        if c.critic_subset is not None and c.critic_subset > c.num_critics:
            raise ConfigError(f"critic_subset={c.critic_subset} exceeds num_critics={c.num_critics}")
        self.actor = Actor(self.obs_space, self.act_space, c.hidden_sizes, c.activation, ortho_init=False,
                           state_dependent_std=True, squash=True).to(self.device)
        self.critic = QEnsemble(self.obs_space, self.act_space, c.num_critics, c.hidden_sizes,
                                c.activation).to(self.device)
        self.critic_target, self.target_flat = target_copy(self.critic)
        self.actor_flat, self.critic_flat = FlatParams(self.actor), FlatParams(self.critic)
        adam = dict(lr=c.learning_rate, **fast_adam_kwargs(self.device))
        self.actor_opt = Adam([self.actor_flat.param], **adam)
        self.critic_opt = Adam([self.critic_flat.param], **adam)
        self.log_alpha = float(np.log(c.alpha))
        self.alpha_adam = ScalarAdam(c.learning_rate)  # one number: plain Python beats an optimizer
        self.target_entropy = (float(c.target_entropy) if c.target_entropy is not None
                               else -float(np.prod(self.act_space.shape)))
        self.grad_steps = 0

    def modules(self):
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target,
                "actor_opt": self.actor_opt, "critic_opt": self.critic_opt}

    def extra_state(self):
        return {"log_alpha": self.log_alpha, "alpha_adam": self.alpha_adam.state_dict(),
                "grad_steps": self.grad_steps}

    def load_extra_state(self, state):
        self.log_alpha = float(state["log_alpha"])
        self.alpha_adam.load_state_dict(state["alpha_adam"])
        self.grad_steps = int(state["grad_steps"])

    def rollout_spec(self):
        return "steps", self.cfg.train_freq

    def replay_spec(self):
        return replay_spec_of(self.cfg)

    def behaviour_policy(self):
        if self.train_state["env_steps"] < self.cfg.learning_starts:
            return RandomPolicy(self.act_space, self.rng)
        return ActorPolicy(self.actor, self.device, log_probs=False)

    # -- learning -----------------------------------------------------------------------------
    def update(self, batch, progress) -> dict:
        """One gradient step on a replay minibatch (s, a, R, gamma^m, s')."""
        with self.autocast():
            return self._gradient_step(batch)

    def _gradient_step(self, b) -> dict:
        c = self.cfg
        alpha = math.exp(self.log_alpha)

        # one reparameterised action per state: used by the temperature and the actor
        dist = self.actor(b.obs)
        a_pi, logp_pi = dist.rsample_with_log_prob()

        # 1. temperature (closed-form gradient of sac_temperature_loss, a Python-float Adam step)
        if c.autotune_alpha:
            self.log_alpha = self.alpha_adam.step(self.log_alpha, sac_temperature_grad(logp_pi, self.target_entropy))

        # 2. critics
        critic_loss, critic_info = sac_critic_loss(self.critic, self.critic_target, self.actor, b, alpha,
                                                   backup=c.backup, critic_subset=c.critic_subset, rng=self.rng)
        self.critic_flat.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()

        # 3. actor (on the updated critics, which get no gradient)
        actor_loss, actor_info = sac_actor_loss(self.actor, self.critic, b, alpha, policy_sample=(dist, a_pi, logp_pi),
                                                q_reduce="mean" if c.num_critics > 2 else "min",
                                                gradient=c.actor_gradient, reinforce_samples=c.reinforce_samples)
        self.actor_flat.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()

        # 4. target critics
        self.grad_steps += 1
        if self.grad_steps % c.target_update_interval == 0:
            polyak_(self.target_flat, self.critic_flat, c.tau)
        return {"loss/critic": critic_loss.detach(), "loss/actor": actor_loss.detach(), "train/alpha": alpha,
                "train/entropy": actor_info["entropy"], "train/q_mean": critic_info["q_mean"]}

    def act(self, obs, deterministic: bool = False):
        dist = self.actor(obs)
        a = dist.mode() if deterministic else dist.sample()
        return a, None


def sac_critic_loss(critic, critic_target, actor, batch, alpha: float, *, backup: str = "min",
                    critic_subset: int | None = None, rng: np.random.Generator | None = None):
    """Soft Bellman regression of the critic ensemble; returns ``(loss, info)``.

        a' ~ pi_theta(.|s'),   y = R + gamma^m (Q'(s', a') - alpha log pi_theta(a'|s')),
        L(phi) = sum_j 1/2 1/B sum_i (Q_phi_j(s_i, a_i) - y_i)^2,

    where Q' combines the target critics Q_phi'_1..E by ``backup``: ``min`` (clipped double Q),
    ``mean``, or ``doubleq`` (critic j bootstraps from target critic j+1 mod E: y is (E, B)).
    ``critic_subset`` M (REDQ) first picks M of the E target critics with ``rng.choice`` (NumPy).
    a' is drawn with ``rsample_with_log_prob`` (torch's global generator). info: ``q_mean``.
    """
    b = batch
    with torch.no_grad():
        next_a, next_logp = actor(b.next_obs).rsample_with_log_prob()
        next_q = critic_target(b.next_obs, next_a)
        if critic_subset is not None:
            pick = torch.from_numpy(rng.choice(next_q.shape[0], critic_subset, replace=False))
            next_q = next_q[pick]
        v_next = ensemble_backup(next_q, backup) - alpha * next_logp
        y = b.rewards + b.discounts * v_next  # (B,) or (E, B) for doubleq
    q = critic(b.obs, b.actions)
    return 0.5 * (q - y).pow(2).mean(1).sum(), {"q_mean": q.detach().mean()}


def sac_actor_loss(actor, critic, batch, alpha: float, *, policy_sample=None, q_reduce: str = "min",
                   gradient: str = "reparam", reinforce_samples: int = 4):
    """Entropy-regularised policy loss; returns ``(loss, info)``.

        L(theta) = 1/B sum_i [alpha log pi_theta(a~_i|s_i) - Q(s_i, a~_i)],   a~ = tanh(mu + sigma eps)

    with Q the ``q_reduce`` (``min`` or ``mean``) over the critics, differentiated through a~
    (``gradient="reparam"``), or by the likelihood ratio with ``reinforce_samples`` actions per
    state and their mean soft value as baseline (``gradient="reinforce"``). ``policy_sample`` is
    ``(dist, a~, log pi(a~|s))`` for ``batch.obs`` if already drawn (SAC draws it once for the
    temperature and the actor), else it is drawn here. The critic gets no gradient.
    info: ``entropy`` = -mean log pi(a~|s) (detached).
    """
    if policy_sample is None:
        dist = actor(batch.obs)
        a_pi, logp_pi = dist.rsample_with_log_prob()
    else:
        dist, a_pi, logp_pi = policy_sample
    with frozen(critic):
        if gradient == "reparam":
            q_pi = ensemble_backup(critic(batch.obs, a_pi), q_reduce)
            loss = (alpha * logp_pi - q_pi).mean()
        else:
            loss = _reinforce_actor_loss(critic, batch.obs, dist, alpha, q_reduce, reinforce_samples)
    return loss, {"entropy": -logp_pi.detach().mean()}


def _reinforce_actor_loss(critic, obs, dist, alpha, q_reduce, k):
    """Likelihood-ratio gradient of E_a~pi[alpha log pi(a|s) - Q(s, a)] with k samples per
    state and the mean over the k samples as baseline (no gradient through the action)."""
    with torch.no_grad():
        a = torch.stack([dist.sample() for _ in range(k)])  # (k, B, d)
    logp = torch.stack([dist.log_prob(a[i]) for i in range(k)])  # (k, B), differentiable
    with torch.no_grad():
        B = a.shape[1]
        obs_k = obs.repeat(k, 1)
        q = ensemble_backup(critic(obs_k, a.reshape(k * B, -1)), q_reduce).view(k, B)
        soft_q = q - alpha * logp  # value of each sample under the entropy-regularised objective
        adv = soft_q - soft_q.mean(0, keepdim=True)
    # d/dtheta E[alpha log pi - Q] = E[(alpha log pi - Q) dlog pi] (+ alpha E[dlog pi] = 0)
    return -(adv * logp).mean()


def sac_temperature_loss(log_alpha, logp_pi, target_entropy: float):
    """Temperature loss J(alpha) = -log(alpha) (1/B sum_i log pi(a~_i|s_i) + H_target), on a
    tensor ``log_alpha`` (for a torch optimizer); returns ``(loss, info)``. Its gradient
    d J / d log(alpha) is :func:`sac_temperature_grad`, which SAC itself steps with
    :class:`ScalarAdam`. info: ``entropy`` (detached)."""
    g = logp_pi.detach().mean()
    return -log_alpha * (g + target_entropy), {"entropy": -g}


def sac_temperature_grad(logp_pi, target_entropy: float) -> float:
    """d/dlog(alpha) of -log(alpha) E[log pi + H_target], i.e. -(E[log pi(a~|s)] + H_target), as
    a Python float (SAC's temperature update with :class:`ScalarAdam`)."""
    return -(logp_pi.detach().mean().item() + target_entropy)


class ScalarAdam:
    """Adam (Kingma & Ba 2015, torch's formulation) for one scalar parameter, in Python floats."""

    def __init__(self, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = self.v = 0.0
        self.t = 0

    def step(self, value: float, grad: float) -> float:
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * grad
        self.v = self.b2 * self.v + (1 - self.b2) * grad * grad
        denom = math.sqrt(self.v) / math.sqrt(1 - self.b2 ** self.t) + self.eps
        return value - self.lr / (1 - self.b1 ** self.t) * self.m / denom

    def state_dict(self) -> dict:
        return {"m": self.m, "v": self.v, "t": self.t}

    def load_state_dict(self, d: dict) -> None:
        self.m, self.v, self.t = float(d["m"]), float(d["v"]), int(d["t"])
