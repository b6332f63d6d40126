"""DAgger, dataset aggregation (Ross et al. 2011; CS285 lecture 2): make the training data
come from the learner's own state distribution p_{pi_theta}(o) instead of the expert's.

    iteration 0: train pi_theta on the expert's demonstrations D (behaviour cloning)
    iteration i >= 1:
      1. run pi_theta to get D_pi = {o_1, ..., o_M}             (``rollout_steps`` env steps)
      2. ask the expert to label D_pi with actions a_t = pi*(o_t)
      3. aggregate: D <- D u D_pi
      4. train pi_theta on D                                     (``steps_per_iteration`` steps)

With ``beta > 0`` step 1 executes the expert's action instead of the learner's with
probability beta^i (the paper's mixture policy; beta = 0, the default, is pure DAgger).
``rollout_policy`` picks whether the learner samples its actions in step 1 or takes the mean:
with ``loss='mse'`` only the mean is trained and its spread stays at the initial sigma = 1, so
``auto`` takes the mean there (the states then come from the policy that is evaluated).
``env_steps`` counts the learner's environment steps (the expert's demonstrations and the
evaluation episodes are not counted). Evaluation runs after iteration 0, so the first eval
row is plain behaviour cloning; set ``eval_every`` to ``rollout_steps`` for one per iteration.
Everything else (policy heads, losses, ``obs_history``, demonstrations, the expert) is as in
deeprl.algos.imitation.bc, whose config this one extends.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deeprl.agent import Agent
from deeprl.algos.imitation._common import (
    action_tensor,
    current_obs,
    dataset_state,
    demo_tensors,
    expert_reference,
    fit,
    get_demos,
    get_expert,
    init_learner,
    load_dataset_state,
    policy_act,
    restore_expert_rng,
)
from deeprl.algos.imitation.bc import BCConfig
from deeprl.core.config import param
from deeprl.nn.acting import TorchSampledPolicy, as_tensor


@dataclass
class DAggerConfig(BCConfig):
    rollout_steps: int = param(1000, "learner environment steps per iteration (summed over envs)", low=1)
    beta: float = param(0.0, "in iteration i execute the expert's action with probability beta^i", low=0.0,
                        high=1.0)
    rollout_policy: str = param("auto", "how the learner acts in step 1: sample pi_theta, or its mean/mode (auto: "
                                "mean when loss='mse', whose spread is never trained; sample otherwise)",
                                choices=("auto", "sample", "mean"))


class MixturePolicy(TorchSampledPolicy):
    """pi_i = beta_i pi* + (1 - beta_i) pi_theta: the learner's action (its mean/mode when ``mean``,
    else a sample, with its log-prob), replaced by the expert's for each row with probability
    ``p_expert`` (drawn from ``rng``); the expert sees the newest observation of a history stack."""

    def __init__(self, policy, device, mean: bool, expert, p_expert: float, k: int, rng: np.random.Generator):
        self.policy, self.device, self.mean, self.expert = policy, device, mean, expert
        self.p_expert, self.k, self.rng = p_expert, k, rng

    def __call__(self, obs):
        with torch.inference_mode(), self.sampling():
            a, logp = policy_act(self.policy, as_tensor(obs, self.device), self.mean)
        a, logp = a.cpu().numpy(), logp.cpu().numpy()
        if self.p_expert > 0:
            use = self.rng.random(len(a)) < self.p_expert
            if use.any():
                a[use] = self.expert.predict(current_obs(obs, self.k)[use])
        return a, logp


class DAgger(Agent):
    name = "dagger"
    Config = DAggerConfig
    evaluate_first_iteration = True  # evaluate the behaviour-cloning policy of iteration 0 too

    def build(self):
        init_learner(self)

    def modules(self):
        return {"policy": self.policy, "optimizer": self.optimizer}

    def policy_modules(self):
        return ("policy",)

    def act(self, obs, deterministic: bool = False):
        return policy_act(self.policy, obs, deterministic)

    def prepare(self):
        """Load the expert and the demonstrations D; the runner calls this before it writes
        anything, and after a resume (the expert is needed to label)."""
        if self.expert is None:
            self.expert = get_expert(self, required=True)
            restore_expert_rng(self)
        if self.data is None:
            demos = get_demos(self, self.expert)
            self.data = demo_tensors(self, demos)
            self.reference = expert_reference(self, self.expert, demos)

    def rollout_spec(self):
        if self.train_state["iterations"] == 0:
            return None  # iteration 0: behaviour cloning on the demonstrations, no collection
        return "steps", -(-self.cfg.rollout_steps // self.run.num_envs)

    def behaviour_policy(self):
        p_expert = self.cfg.beta ** self.train_state["iterations"] if self.cfg.beta > 0 else 0.0
        mean = self.cfg.rollout_policy == "mean" or (self.cfg.rollout_policy == "auto" and self.cfg.loss == "mse")
        return MixturePolicy(self.policy, self.device, mean, self.expert, p_expert, self.run.obs_history, self.rng)

    def update(self, batch, progress):
        c, k = self.cfg, self.run.obs_history
        self.prepare()
        metrics = {}
        if batch is not None:
            # 2. the expert labels the states the learner visited; 3. aggregate
            obs = np.asarray(batch.obs, np.float32).reshape((-1,) + self.obs_space.shape)
            labels = self.expert.predict(current_obs(obs, k))
            visited = action_tensor(batch.actions.reshape((len(obs),) + batch.actions.shape[2:]), self.act_space,
                                    self.device)
            labels = action_tensor(labels, self.act_space, self.device)
            self.data = (torch.cat([self.data[0], torch.as_tensor(obs, device=self.device)]),
                         torch.cat([self.data[1], labels]))
            disagreement = ((visited != labels).float().mean() if labels.dtype == torch.long
                            else (visited - labels).pow(2).sum(-1).mean())
            metrics = {"dagger/new_states": float(len(obs)), "dagger/action_disagreement": disagreement}
        loss = fit(self, c.steps_per_iteration)  # 4. train on the aggregated dataset
        return {**metrics, "loss/imitation": loss, "train/dataset_size": float(len(self.data[1])),
                "train/gradient_steps": float(c.steps_per_iteration),
                "dagger/iteration": float(self.train_state["iterations"])}

    def extra_state(self):
        return dataset_state(self)

    def load_extra_state(self, state):
        load_dataset_state(self, state)

    def summary(self):
        return dict(self.reference)
