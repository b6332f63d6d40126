"""Behaviour cloning (CS285 lecture 2): supervised learning of pi_theta(a | o) on an expert's
demonstrations D = {(o_i, a_i)},

    theta <- argmin_theta  -1/|D| sum_i log pi_theta(a_i | o_i)      (loss=nll)
                      or    1/|D| sum_i ||mu_theta(o_i) - a_i||^2    (loss=mse, Gaussian head)

by Adam on random minibatches. The policy head decides what "the expert's action" can look
like: one Gaussian (the mean of several modes is what it learns), a mixture of Gaussians or
an autoregressive discretisation (either keeps several modes), or a categorical for discrete
actions. ``obs_history=N`` (a run setting) feeds the last N observations, for experts whose
behaviour depends on more than the current observation.

The demonstrations are ``demos`` (a Minari dataset, see ``deeprl collect-demos``) or
``demo_episodes`` episodes of ``expert`` (a shipped expert by default), collected on the first
update. BC runs in the offline loop (deeprl/runners/offline_loop.py): it takes no environment
steps (``env_steps`` stays 0), and its budget (``--steps`` on the command line) and the
evaluation and checkpoint intervals count gradient steps (``grad_steps``). ``summary.json``
reports the expert's return (``expert_return_mean``) beside the learner's.
"""
from __future__ import annotations

from dataclasses import dataclass

from deeprl.agent import Agent
from deeprl.algos.imitation._common import (
    HEADS,
    dataset_state,
    demo_tensors,
    expert_reference,
    get_demos,
    get_expert,
    imitation_step,
    init_learner,
    load_dataset_state,
    policy_act,
)
from deeprl.core.config import param
from deeprl.core.types import Labelled
from deeprl.nn.acting import ActorPolicy
from deeprl.nn.networks import ACTIVATIONS


@dataclass
class BCConfig:
    expert: str = param("auto", "expert: a shipped expert's name (deeprl list experts), a saved deeprl policy or "
                                "checkpoint, or auto (the env's shipped expert)")
    demos: str = param("", "demonstrations: a Minari dataset directory, id or HDF5 file (empty: collect "
                           "demo_episodes from the expert)")
    demo_episodes: int = param(5, "expert episodes to collect when demos is empty", low=1)
    policy_head: str = param("auto", "action distribution (auto: gaussian for Box, categorical for Discrete)",
                             choices=HEADS)
    loss: str = param("nll", "negative log-likelihood, or mean squared error of the Gaussian mean",
                      choices=("nll", "mse"))
    n_components: int = param(5, "Gaussians in the mixture head", low=1)
    bins: int = param(21, "bins per action dimension of the autoregressive head", low=2)
    hidden_sizes: tuple[int, ...] = param((64, 64), "hidden layers of the policy", low=1)
    activation: str = param("tanh", "hidden activation", choices=tuple(ACTIVATIONS))
    learning_rate: float = param(2e-3, "Adam learning rate", low=0.0, low_open=True, aliases=("lr",))
    batch_size: int = param(100, "minibatch size", low=1)
    steps_per_iteration: int = param(1000, "gradient steps per iteration (one metrics row each)", low=1)


class BC(Agent):
    name = "bc"
    Config = BCConfig
    loop = "offline"

    def build(self):
        init_learner(self)
        self.log_every = self.cfg.steps_per_iteration  # one metrics row per iteration

    def modules(self):
        return {"policy": self.policy, "optimizer": self.optimizer}

    def policy_modules(self):
        return ("policy",)

    def act(self, obs, deterministic: bool = False):
        return policy_act(self.policy, obs, deterministic)

    def behaviour_policy(self):
        """Samples the cloned policy (BC collects nothing; this is what a worker or a user acts with)."""
        return ActorPolicy(self.policy, self.device)

    def prepare(self):
        """Load the expert and the demonstrations (with histories) once; the runner calls this
        before it writes anything."""
        if self.data is not None:
            return
        self.expert = get_expert(self, required=not self.cfg.demos)
        demos = get_demos(self, self.expert)
        self.data = demo_tensors(self, demos)
        self.reference = expert_reference(self, self.expert, demos)

    def dataset(self) -> Labelled:
        return Labelled(*self.data)

    def update(self, batch, progress):
        obs, actions = batch
        return {"loss/imitation": imitation_step(self, obs, actions), "train/dataset_size": float(len(self.data[1]))}

    def extra_state(self):
        return dataset_state(self)

    def load_extra_state(self, state):
        load_dataset_state(self, state)

    def summary(self):
        return dict(self.reference)
