"""MCTS: UCT tree search on a deterministic, clonable copy of the environment; CS285 lecture 10.

Every action is chosen by a fresh search from the current state (nothing is learned)::

    s = state_from_observation(simulator, obs)          the observation is the full state
    a = argmax_a N(s, a)  after num_simulations rounds of
        TreePolicy (UCT: Q/N + 2 C sqrt(2 ln N(parent) / N)) -> expand -> random rollout -> backup

(see :mod:`deeprl.planning.mcts` for the search itself). The agent's simulator is its own
unwrapped copy of the environment, so it works on any env id in
``deeprl.envs.clonable.SEARCH_ENVS`` (``deeprl/DeterministicMaze-v0``, CartPole-v1, ...).
Training only acts: each iteration collects ``steps_per_update`` real steps with the planner
and logs the time per action and the simulator steps per action.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from deeprl.agent import Agent
from deeprl.algos.planning._common import ActionClock, PlannerPolicy
from deeprl.core.config import param
from deeprl.envs.clonable import search_simulator, state_from_observation
from deeprl.planning.mcts import MCTS as TreeSearch


@dataclass
class MCTSConfig:
    num_simulations: int = param(200, "UCT simulations (tree expansions + rollouts) per action", low=1)
    exploration: float = param(1.0 / math.sqrt(2.0), "UCT constant C in Q/N + 2C sqrt(2 ln N_parent / N)", low=0.0)
    gamma: float = param(1.0, "discount of returns inside the search", low=0.0, high=1.0, aliases=("discount",))
    max_depth: int = param(50, "maximum depth of the search tree", low=1)
    rollout_steps: int = param(50, "steps of the random default-policy rollout from a new leaf (0: none)", low=0)
    steps_per_update: int = param(100, "real environment steps per training iteration (one log row)", low=1)


class MCTSController:
    """``act(obs (B, ...)) -> actions (B,)``: one UCT search per row from the state behind the
    observation, in the simulator; counts the simulator steps the searches took."""

    def __init__(self, search: TreeSearch, simulator):
        self.search, self.simulator = search, simulator
        self.sim_steps = 0

    def act(self, obs):
        actions = np.empty(len(obs), dtype=np.int64)
        for i, o in enumerate(obs):
            result = self.search.search(self.simulator, state_from_observation(self.simulator, o))
            actions[i] = result.action
            self.sim_steps += result.sim_steps
        return actions


class MCTSAgent(Agent):
    name = "mcts"
    Config = MCTSConfig

    def build(self):
        c = self.cfg
        self.simulator = search_simulator(self.run.env_id, self.name)  # ConfigError if unsupported
        search = TreeSearch(num_simulations=c.num_simulations, exploration=c.exploration, gamma=c.gamma,
                            max_depth=c.max_depth, rollout_steps=c.rollout_steps, rng=self.rng)
        self.controller = MCTSController(search, self.simulator)
        self.clock = ActionClock()
        self.acting = PlannerPolicy(self.controller, None, self.clock)

    def act(self, obs, deterministic: bool = False):
        return torch.as_tensor(self.acting(obs)[0]), None

    def behaviour_policy(self):
        return self.acting

    def rollout_spec(self):
        return "steps", self.cfg.steps_per_update

    def update(self, batch, progress):
        return {"time/per_action_s": self.clock.per_action,
                "plan/sim_steps_per_action": self.controller.sim_steps / max(self.clock.actions, 1)}

    def summary(self) -> dict:
        return {"time_per_action_s": self.clock.per_action, "actions_planned": self.clock.actions}

    def modules(self):
        return {}

    def extra_state(self):
        return {"clock": self.clock.state(), "sim_steps": self.controller.sim_steps}

    def load_extra_state(self, state):
        if "clock" in state:
            self.clock.load(state["clock"])
            self.controller.sim_steps = int(state["sim_steps"])
