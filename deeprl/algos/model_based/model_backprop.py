"""Policy learning through a learned model: model-based RL version 2.0 (CS285 lecture 12), with a
value function at the horizon.

1. run the policy (random at first) and add the visited (s, a, s') to D;
2. fit the dynamics ensemble on D (deeprl.models.training);
3. ``policy_updates`` times: from ``batch_size`` states s_0 ~ D imagine ``horizon`` = H steps with
   the policy, each row's model member drawn from the elites at every step (TS-1), and improve
   the policy on

       J(theta) = E[ sum_{t<H} gamma^t r(s_t, a_t, s_{t+1}) m_t + gamma^H m_H V(s_H) ],   a_t ~ pi_theta(.|s_t)

   (m_t: no termination before t) with one of the two gradients the lecture compares
   (``gradient``):

   - ``pathwise`` (backpropagation through the model, "BPTT"): a_t = tanh(mu + sigma eps)
     reparameterised, and dJ/dtheta flows through every predicted s_{t+1} = f(s_t, a_t) and the
     reward into theta: the product of the model's Jacobians over the horizon;
   - ``likelihood_ratio`` (the model as a simulator for a policy gradient):
     grad = E[ sum_t grad log pi(a_t|s_t) (G_t - V(s_t)) ], G_t the discounted reward-to-go plus
     gamma^(H-t) V(s_H), no derivative of the model at all;

   plus ``entropy_coef`` times the policy's entropy;
4. fit V to the imagined returns (targets G_t with the bootstrap V from a Polyak-averaged copy).

The row logs the norm of the policy gradient (``train/policy_grad_norm``) so that the two
estimators can be compared (benchmarks/model_gradient.py measures their spread as H grows).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.model_based._common import (
    TransitionData,
    build_model,
    check_spaces,
    prediction_errors,
    reward_functions,
)
from deeprl.core.config import param
from deeprl.core.errors import ConfigError, NonFiniteError
from deeprl.models.training import fit_dynamics
from deeprl.nn.acting import ActorPolicy, RandomPolicy
from deeprl.nn.optim import Adam
from deeprl.nn.policies import Actor, Critic

__all__ = ["GRADIENTS", "ModelBackprop", "ModelBackpropConfig", "imagine", "imagined_returns", "policy_objective"]

GRADIENTS = ("pathwise", "likelihood_ratio")


@dataclass
class ModelBackpropConfig:
    gradient: str = param("pathwise", "policy gradient estimator through the model", choices=GRADIENTS)
    horizon: int = param(10, "imagined steps H per policy update", low=1)
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    initial_steps: int = param(1000, "env steps of uniform random actions before the first fit", low=1)
    steps_per_iteration: int = param(200, "env steps with the policy between fits", low=1)
    policy_updates: int = param(50, "policy and value gradient steps per iteration", low=1)
    batch_size: int = param(256, "imagined start states per policy update", low=1)
    learning_rate: float = param(3e-4, "Adam learning rate of the policy", low=0.0, low_open=True)
    value_learning_rate: float = param(1e-3, "Adam learning rate of V", low=0.0, low_open=True)
    entropy_coef: float = param(0.0, "weight of the policy's entropy in the objective", low=0.0)
    max_grad_norm: float = param(10.0, "clip the policy gradient's norm (0: off)", low=0.0)
    tau: float = param(0.01, "Polyak rate of the target V", low=0.0, high=1.0, low_open=True)
    hidden_sizes: tuple[int, ...] = param((64, 64), "hidden layers of the policy and V", low=1)
    dataset_size: int = param(1_000_000, "transitions kept in D", low=1)
    # the model
    ensemble_size: int = param(5, "members of the dynamics ensemble", low=1)
    num_model_elites: int = param(5, "members the imagination uses", low=1)
    model_hidden_sizes: tuple[int, ...] = param((200, 200), "hidden layers of every member", low=1)
    model_activation: str = param("silu", "hidden activation of the model",
                                  choices=("tanh", "relu", "elu", "gelu", "silu"))
    probabilistic: bool = param(False, "Gaussian members trained by NLL (else deterministic, MSE)")
    learn_reward: bool = param(False, "learn the reward with the dynamics (else the env's known reward)")
    model_learning_rate: float = param(1e-3, "Adam learning rate of the model", low=0.0, low_open=True)
    model_weight_decay: float = param(5e-5, "L2 weight decay of the model", low=0.0)
    model_batch_size: int = param(256, "minibatch size of model fitting", low=1)
    model_max_epochs: int = param(30, "most epochs per fit", low=1)
    model_val_fraction: float = param(0.1, "fraction of D held out for validation", low=0.0, high=0.9)
    model_patience: int = param(5, "epochs without a 1% validation improvement before stopping", low=1)
    bootstrap: bool = param(True, "each member trains on its own bootstrap resample of D")

    def __post_init__(self):
        if self.num_model_elites > self.ensemble_size:
            raise ConfigError(f"num_model_elites: must be <= ensemble_size = {self.ensemble_size}, "
                              f"got {self.num_model_elites}")


def imagine(model, reward_fn, terminated_fn, actor, s0, horizon: int, elites, generator, pathwise: bool):
    """H imagined steps of ``actor`` from ``s0 (B, n)``: states (H+1, B, n), rewards (H, B), log-probs
    (H, B), alive masks (H+1, B) (1 until a termination). ``pathwise``: reparameterised actions and
    a differentiable model step (gradients reach the actor through the states); otherwise the
    rollout is detached and only the log-probs carry gradients."""
    elites = torch.as_tensor(elites, dtype=torch.long)
    states, rewards, logps, alive = [s0], [], [], [torch.ones(s0.shape[0])]
    s = s0
    for t in range(horizon):
        dist = actor(s)
        if pathwise:
            a, logp = dist.rsample_with_log_prob()
        else:
            with torch.no_grad():
                a = dist.sample()
            logp = dist.log_prob(a)
        members = elites[torch.randint(len(elites), (s.shape[0],), generator=generator)]
        with torch.set_grad_enabled(pathwise and torch.is_grad_enabled()):
            s2, r = model.predict(s, a, members, sample=model.probabilistic, generator=generator)
            if r is None:
                r = reward_fn(s, a, s2)
        if not (torch.isfinite(s2).all() and torch.isfinite(r).all()):
            bad = sorted(set(members[~torch.isfinite(s2).all(-1) | ~torch.isfinite(r)].tolist()))
            raise NonFiniteError(f"non-finite imagined state or reward at imagined step {t + 1} (member(s) {bad})")
        done = terminated_fn(s, a, s2) if terminated_fn is not None else torch.zeros(s.shape[0], dtype=torch.bool)
        alive.append(alive[-1] * (~done).float())
        states.append(s2)
        rewards.append(r)
        logps.append(logp)
        s = s2
    return torch.stack(states), torch.stack(rewards), torch.stack(logps), torch.stack(alive)


def imagined_returns(rewards, alive, v_last, gamma: float) -> torch.Tensor:
    """``G_t = sum_{k=t}^{H-1} gamma^(k-t) m_k r_k + gamma^(H-t) m_H V(s_H)`` for every imagined step t,
    (H, B): the discounted reward-to-go, ``m_k = alive[k]`` (1 until a termination before step k)."""
    H = rewards.shape[0]
    out = torch.empty_like(rewards)
    g = alive[H] * v_last
    for t in range(H - 1, -1, -1):
        g = alive[t] * rewards[t] + gamma * g
        out[t] = g
    return out


def policy_objective(states, rewards, logps, alive, v_last, value, gamma: float, pathwise: bool) -> torch.Tensor:
    """The surrogate whose gradient is the chosen estimator of dJ/dtheta: the imagined return itself
    (``pathwise``; its graph runs through the model), or ``sum_t log pi(a_t|s_t) (G_t - V(s_t))`` with
    G_t and the baseline V detached (``likelihood_ratio``)."""
    if pathwise:
        return imagined_returns(rewards, alive, v_last, gamma)[0].mean()
    with torch.no_grad():
        returns = imagined_returns(rewards, alive, v_last, gamma)
        adv = returns - value(states[:-1].reshape(-1, states.shape[-1])).view_as(returns)
    return (logps * adv * alive[:-1]).sum(0).mean()


class ModelBackprop(Agent):
    name = "model_backprop"
    Config = ModelBackpropConfig
    action_spaces = (spaces.Box,)
    default_torch_threads = 2

    def build(self):
        check_spaces(self)
        c = self.cfg
        self.actor = Actor(self.obs_space, self.act_space, c.hidden_sizes, "tanh", ortho_init=False,
                           state_dependent_std=True, squash=True)
        self.value = Critic(self.obs_space, c.hidden_sizes, "tanh")
        self.value_target = copy.deepcopy(self.value).requires_grad_(False)
        self.actor_opt = Adam(self.actor.parameters(), lr=c.learning_rate)
        self.value_opt = Adam(self.value.parameters(), lr=c.value_learning_rate)
        self.model, self.model_opt = build_model(self)
        self.reward_fn, self.terminated_fn = reward_functions(self)  # ConfigError: no known reward
        self.data = TransitionData(self.obs_space.shape[0], self.act_space.shape[0], c.dataset_size)
        self.elites = list(range(c.num_model_elites))
        self.generator = torch.Generator().manual_seed(int(self.rng.integers(2**63)))
        self.fitted = False

    def behaviour_policy(self):
        return ActorPolicy(self.actor, self.device, log_probs=False) if self.fitted else \
            RandomPolicy(self.act_space, self.rng)

    def rollout_spec(self):
        n = self.cfg.steps_per_iteration if self.fitted else self.cfg.initial_steps
        return "steps", -(-n // self.run.num_envs)

    def update(self, batch, progress):
        c = self.cfg
        rows = TransitionData.rows_of(batch)
        metrics = prediction_errors(self.model, rows, self.elites) if self.fitted else {}
        self.data.add(rows)
        d = self.data
        fit = fit_dynamics(self.model, self.model_opt, d.obs, d.actions, d.next_obs,
                           d.rewards if c.learn_reward else None, rng=self.rng, batch_size=c.model_batch_size,
                           max_epochs=c.model_max_epochs, val_fraction=c.model_val_fraction,
                           patience=c.model_patience, bootstrap=c.bootstrap, num_elites=c.num_model_elites,
                           precision=self.run.matmul_precision)
        self.elites, self.fitted = fit.elites, True
        metrics.update(fit.metrics())
        logs = [self.policy_step() for _ in range(c.policy_updates)]
        metrics.update({k: float(np.mean([m[k] for m in logs])) for k in logs[0]})
        metrics["train/gradient_steps"] = fit.gradient_steps + c.policy_updates
        return metrics

    def policy_step(self) -> dict:
        """One policy and one value update on a fresh batch of imagined rollouts."""
        c = self.cfg
        s0 = self.data.obs[torch.as_tensor(self.rng.integers(0, len(self.data), c.batch_size))]
        pathwise = c.gradient == "pathwise"
        self.model.requires_grad_(False)  # gradients reach the actor through the states, not the weights
        try:
            states, rewards, logps, alive = imagine(self.model, self.reward_fn, self.terminated_fn, self.actor, s0,
                                                    c.horizon, self.elites, self.generator, pathwise)
        finally:
            self.model.requires_grad_(True)
        v_last = self.value_target(states[-1])
        objective = policy_objective(states, rewards, logps, alive, v_last, self.value, c.gamma, pathwise)
        entropy = -(logps * alive[:-1]).sum(0).mean()
        loss = -(objective + c.entropy_coef * entropy)
        self.actor_opt.zero_grad()
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(self.actor.parameters(), c.max_grad_norm if c.max_grad_norm > 0
                                                    else float("inf")))
        self.actor_opt.step()
        # V on the imagined states, towards the (detached) imagined returns
        with torch.no_grad():
            targets = imagined_returns(rewards.detach(), alive, v_last.detach(), c.gamma)
        v = self.value(states[:-1].detach().reshape(-1, states.shape[-1])).view_as(targets)
        v_loss = ((v - targets).pow(2) * alive[:-1]).sum() / alive[:-1].sum().clamp_min(1.0)
        self.value_opt.zero_grad()
        v_loss.backward()
        self.value_opt.step()
        with torch.no_grad():
            for p, tp in zip(self.value.parameters(), self.value_target.parameters()):
                tp.lerp_(p, c.tau)
        return {"loss/policy": float(loss.detach()), "loss/value": float(v_loss.detach()),
                "train/policy_grad_norm": norm, "train/imagined_return": float(rewards.detach().sum(0).mean()),
                "train/entropy": float(entropy.detach())}

    def summary(self) -> dict:
        return {"dataset_size": len(self.data)}

    def modules(self):
        return {"actor": self.actor, "value": self.value, "value_target": self.value_target,
                "actor_opt": self.actor_opt, "value_opt": self.value_opt, "model": self.model,
                "model_optimizer": self.model_opt}

    def extra_state(self):
        return {"data": self.data.state_dict(), "elites": np.asarray(self.elites), "fitted": self.fitted,
                "generator": self.generator.get_state()}

    def load_extra_state(self, state):
        self.data.load_state_dict(state["data"])
        self.elites = [int(e) for e in np.asarray(state["elites"])]
        self.fitted = bool(state["fitted"])
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))
