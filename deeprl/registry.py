"""Registry of algorithms by name (the CLI's ALGO argument).

Each family maps a name to ``"module:Class"`` under :mod:`deeprl.algos`; a class is imported
only when it is looked up, so a PPO run never imports the planners, the tabular agents or the
imitation stack (h5py, demos). Other layers (the CLI, experts/) find algorithms through this
module and never import an algorithm file directly; it imports no algorithm itself, so experts/
(which algos/imitation uses) can build any algorithm without an import circle.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

FAMILIES: dict[str, dict[str, str]] = {
    "pg": {  # policy gradients and actor-critic (deeprl/algos/pg)
        "reinforce": "pg.reinforce:REINFORCE", "actor_critic": "pg.actor_critic:ActorCritic",
        "a2c": "pg.a2c:A2C", "ppo": "pg.ppo:PPO",
    },
    "offpolicy": {  # value-based and actor-critic with a replay buffer (deeprl/algos/offpolicy)
        "dqn": "offpolicy.dqn:DQN", "sac": "offpolicy.sac:SAC", "td3": "offpolicy.td3:TD3",
        "ddpg": "offpolicy.ddpg:DDPG", "fqi": "offpolicy.fqi:FQI", "soft_q": "offpolicy.soft_q:SoftQ",
        "naf": "offpolicy.naf:NAF",
    },
    "tabular": {  # tables and bandits (deeprl/algos/tabular)
        "value_iteration": "tabular.value_iteration:ValueIteration",
        "policy_iteration": "tabular.policy_iteration:PolicyIteration",
        "q_learning": "tabular.q_learning:QLearning", "sarsa": "tabular.sarsa:Sarsa",
        "expected_sarsa": "tabular.expected_sarsa:ExpectedSarsa",
        "double_q_learning": "tabular.double_q_learning:DoubleQLearning",
        "sarsa_lambda": "tabular.sarsa_lambda:SarsaLambda", "dyna_q": "tabular.dyna_q:DynaQ",
        "mc_control": "tabular.mc_control:MCControl", "ucb": "tabular.ucb:UCB",
        "epsilon_greedy": "tabular.epsilon_greedy:EpsilonGreedyBandit", "thompson": "tabular.thompson:Thompson",
    },
    "planning": {  # known-dynamics planners (deeprl/algos/planning)
        "ilqr": "planning.ilqr:ILQR", "lqr": "planning.lqr:LQR", "mcts": "planning.mcts:MCTSAgent",
        "mpc": "planning.mpc:MPC",
    },
    "imitation": {  # learning from an expert (deeprl/algos/imitation)
        "bc": "imitation.bc:BC", "dagger": "imitation.dagger:DAgger",
    },
    "model_based": {  # learned dynamics models (deeprl/algos/model_based)
        "mbrl": "model_based.mbrl:MBRL", "pets": "model_based.pets:PETS", "mbpo": "model_based.mbpo:MBPO",
        "mve": "model_based.mve:MVE", "dyna": "model_based.dyna:Dyna",
        "model_backprop": "model_based.model_backprop:ModelBackprop",
    },
}


class Registry(Mapping):
    """``name -> algorithm class``, importing the class's module on first lookup."""

    def __init__(self, families: dict[str, dict[str, str]]):
        self._where = {name: target for fam in families.values() for name, target in fam.items()}
        self._family = {name: fam for fam, names in families.items() for name in names}

    def __getitem__(self, name: str):
        target = self._where[name]  # KeyError for unknown names, as a dict
        module, cls = target.split(":")
        return getattr(importlib.import_module(f"deeprl.algos.{module}"), cls)

    def __contains__(self, name) -> bool:  # without importing (Mapping's default looks the class up)
        return name in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def family(self, name: str) -> str:
        """The family an algorithm belongs to (a key of :data:`FAMILIES`)."""
        return self._family[name]

    def module_name(self, name: str) -> str:
        """The module that defines ``name``, without importing it."""
        return "deeprl.algos." + self._where[name].split(":")[0]


ALGORITHMS = Registry(FAMILIES)
