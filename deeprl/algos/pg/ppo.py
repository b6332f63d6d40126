"""Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347); CS285 lecture 9.

Each iteration collects ``n_steps`` steps from each of ``num_envs`` environments, estimates
advantages with GAE(gamma, lambda) and optimises, for ``n_epochs`` passes over shuffled
minibatches, the clipped surrogate

    L_clip = E[ min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t) ],  r_t = pi(a_t|s_t) / pi_old(a_t|s_t)

(or, with ``objective=kl_penalty``, E[r_t A_t] - beta * KL(pi_old || pi) with beta adapted
towards ``kl_target``), plus ``vf_coef`` * value loss (optionally clipped around the old
values) minus ``ent_coef`` * entropy. Training stops early in an iteration when the
approximate KL exceeds 1.5 * ``target_kl``.

Logged diagnostics (``train/approx_kl``, ``train/clip_fraction``, ``loss/entropy``) compare the
policy after the iteration's updates with the behaviour policy over the whole rollout; the
adaptive KL coefficient uses the same KL (the paper's d = E[KL(pi_old, pi)] after the update).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from deeprl.agent import Agent
from deeprl.algos.pg._common import explained_variance, flat, gae_advantages
from deeprl.core.config import param
from deeprl.core.schedules import SCHEDULES, scheduled, set_lr
from deeprl.data.collect import to_tensor
from deeprl.nn.flat import FlatParams, fast_adam_kwargs
from deeprl.nn.networks import ACTIVATIONS
from deeprl.nn.optim import Adam
from deeprl.nn.policies import Actor, Critic


@dataclass
class PPOConfig:
    n_steps: int = param(2048, "steps collected per env per iteration", low=1)
    batch_size: int = param(64, "minibatch size", low=1)
    n_epochs: int = param(10, "passes over each rollout", low=1)
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    gae_lambda: float = param(0.95, "GAE lambda (0: one-step TD, 1: Monte Carlo)", low=0.0, high=1.0)
    learning_rate: float = param(3e-4, "Adam learning rate (initial value under a schedule)", low=0.0,
                                 low_open=True, aliases=("lr",))
    lr_schedule: str = param("constant", "learning-rate schedule over training", choices=SCHEDULES)
    objective: str = param("clip", "surrogate: clipped ratio or adaptive KL penalty",
                           choices=("clip", "kl_penalty"))
    clip_range: float = param(0.2, "ratio clipping epsilon (initial value under a schedule)", low=0.0,
                              low_open=True)
    clip_schedule: str = param("constant", "clip-range schedule over training", choices=SCHEDULES)
    clip_range_vf: float | None = param(None, "clip value predictions around the old values (None: off)",
                                        low=0.0, low_open=True)
    kl_target: float = param(0.01, "target KL for the adaptive penalty (objective=kl_penalty)", low=0.0,
                             low_open=True)
    kl_coef_init: float = param(1.0, "initial KL penalty coefficient beta", low=0.0)
    target_kl: float | None = param(None, "stop an iteration's epochs when approx KL > 1.5 * target_kl",
                                    low=0.0, low_open=True)
    ent_coef: float = param(0.0, "entropy bonus coefficient", low=0.0)
    vf_coef: float = param(0.5, "value loss coefficient", low=0.0)
    max_grad_norm: float = param(0.5, "clip the global gradient norm (0: off)", low=0.0)
    normalize_advantages: bool = param(True, "standardise advantages per minibatch")
    hidden_sizes: tuple[int, ...] = param((64, 64), "hidden layers of the actor and the critic", low=1)
    activation: str = param("tanh", "hidden activation", choices=tuple(ACTIVATIONS))
    ortho_init: bool = param(True, "orthogonal initialisation")
    log_std_init: float = param(0.0, "initial log std of the Gaussian policy")
    state_dependent_std: bool = param(False, "Gaussian std produced by the network (else a parameter)")
    squash: bool = param(False, "tanh-squashed Gaussian that respects the action bounds")
    adam_eps: float = param(1e-5, "Adam epsilon", low=0.0, low_open=True)


class PPO(Agent):
    name = "ppo"
    Config = PPOConfig

    def build(self):
        c = self.cfg
        self.actor = Actor(self.obs_space, self.act_space, c.hidden_sizes, c.activation, c.ortho_init,
                           c.log_std_init, c.state_dependent_std, c.squash).to(self.device)
        self.critic = Critic(self.obs_space, c.hidden_sizes, c.activation, c.ortho_init).to(self.device)
        self.flat = FlatParams(self.actor, self.critic)  # one tensor: cheap clipping and Adam step
        self.optimizer = Adam([self.flat.param], lr=c.learning_rate, eps=c.adam_eps,
                                          **fast_adam_kwargs(self.device))
        self.kl_coef = c.kl_coef_init

    def modules(self):
        return {"actor": self.actor, "critic": self.critic, "optimizer": self.optimizer}

    def extra_state(self):
        return {"kl_coef": self.kl_coef}

    def load_extra_state(self, state):
        self.kl_coef = float(state.get("kl_coef", self.cfg.kl_coef_init))

    def rollout_spec(self):
        return "steps", self.cfg.n_steps

    def update(self, batch, progress):
        c = self.cfg
        lr = scheduled(c.learning_rate, c.lr_schedule, progress)
        clip = scheduled(c.clip_range, c.clip_schedule, progress)
        set_lr(self.optimizer, lr)

        # 1. advantages and value targets from the rollout (old critic)
        values, adv, returns = gae_advantages(self.critic, batch, c.gamma, c.gae_lambda, self.device)

        obs = to_tensor(flat(batch.obs), self.device)
        actions = torch.as_tensor(flat(batch.actions), device=self.device)
        old_logp = torch.as_tensor(flat(batch.log_probs), device=self.device)
        adv_t = torch.as_tensor(flat(adv), dtype=torch.float32, device=self.device)
        ret_t = torch.as_tensor(flat(returns), dtype=torch.float32, device=self.device)
        old_v = torch.as_tensor(flat(values), dtype=torch.float32, device=self.device)
        n = adv_t.shape[0]
        mb = min(c.batch_size, n)
        normalize_each = c.normalize_advantages and 1 < mb < n  # per minibatch
        if c.normalize_advantages and mb == n > 1:  # one minibatch: normalise once, not every epoch
            adv_t = (adv_t - adv_t.mean()) / (adv_t.std() + 1e-8)

        # 2. epochs of minibatch gradient steps
        loss_sums = torch.zeros(2)  # policy loss, value loss
        steps, stopped_early = 0, False
        for _ in range(c.n_epochs):
            # one minibatch per epoch covers the rollout: its order is irrelevant, skip the shuffle
            perm = None if mb == n else torch.from_numpy(self.rng.permutation(n))
            for start in range(0, n - mb + 1, mb):
                idx = None if perm is None else perm[start:start + mb]
                o = _take(obs, idx)
                dist = self.actor(o)
                log_ratio = dist.log_prob(_take(actions, idx)) - _take(old_logp, idx)
                ratio = log_ratio.exp()
                if c.target_kl is not None:  # early stopping on KL(old || new), k3 estimator
                    with torch.no_grad():
                        if ((ratio - 1) - log_ratio).mean() > 1.5 * c.target_kl:
                            stopped_early = True
                            break
                a = _take(adv_t, idx)
                if normalize_each:
                    a = (a - a.mean()) / (a.std() + 1e-8)
                if c.objective == "clip":
                    policy_loss = -torch.min(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a).mean()
                else:
                    policy_loss = -(ratio * a).mean() + self.kl_coef * ((ratio - 1) - log_ratio).mean()
                v, ret = self.critic(o), _take(ret_t, idx)
                if c.clip_range_vf is None:
                    value_loss = F.mse_loss(v, ret)
                else:
                    v_old = _take(old_v, idx)
                    v_clipped = v_old + (v - v_old).clamp(-c.clip_range_vf, c.clip_range_vf)
                    value_loss = torch.max((v - ret).pow(2), (v_clipped - ret).pow(2)).mean()
                loss = policy_loss + c.vf_coef * value_loss
                if c.ent_coef > 0:
                    loss = loss - c.ent_coef * dist.entropy().mean()

                self.flat.zero_grad()
                loss.backward()
                if c.max_grad_norm > 0:
                    self.flat.clip_grad_norm_(c.max_grad_norm)
                self.optimizer.step()
                loss_sums += torch.stack([policy_loss.detach(), value_loss.detach()])
                steps += 1
            if stopped_early:
                break

        # 3. diagnostics: the updated policy against the behaviour policy, over the whole rollout
        with torch.no_grad():
            dist = self.actor(obs)
            log_ratio = dist.log_prob(actions) - old_logp
            ratio = log_ratio.exp()
            diag = torch.stack([((ratio - 1) - log_ratio).mean(), ((ratio - 1).abs() > clip).float().mean(),
                                dist.entropy().mean()]).tolist()
        pl, vl = (loss_sums / max(steps, 1)).tolist()
        metrics = {"loss/policy": pl, "loss/value": vl, "loss/entropy": diag[2], "train/approx_kl": diag[0],
                   "train/clip_fraction": diag[1], "train/learning_rate": lr, "train/clip_range": clip,
                   "train/explained_variance": explained_variance(values.ravel(), returns.ravel()),
                   "train/gradient_steps": float(steps), "train/stopped_early": float(stopped_early)}
        if c.objective == "kl_penalty":  # adaptive beta (PPO paper, section 4)
            if diag[0] < c.kl_target / 1.5:
                self.kl_coef /= 2
            elif diag[0] > c.kl_target * 1.5:
                self.kl_coef *= 2
            metrics["train/kl_coef"] = self.kl_coef
        return metrics


def _take(x, idx):
    """Rows ``idx`` of a tensor or of each tensor of a dict (``idx=None``: everything)."""
    if idx is None:
        return x
    return {k: v[idx] for k, v in x.items()} if isinstance(x, dict) else x[idx]
