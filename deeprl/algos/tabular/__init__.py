"""Tabular agents (finite state and action spaces; NumPy tables, no networks): dynamic
programming with the environment's known model, model-free TD and Monte Carlo control, and
multi-armed bandits. The algorithms themselves live in :mod:`deeprl.tabular`."""
from deeprl.algos.tabular.double_q_learning import DoubleQLearning
from deeprl.algos.tabular.dyna_q import DynaQ
from deeprl.algos.tabular.epsilon_greedy import EpsilonGreedyBandit
from deeprl.algos.tabular.expected_sarsa import ExpectedSarsa
from deeprl.algos.tabular.mc_control import MCControl
from deeprl.algos.tabular.policy_iteration import PolicyIteration
from deeprl.algos.tabular.q_learning import QLearning
from deeprl.algos.tabular.sarsa import Sarsa
from deeprl.algos.tabular.sarsa_lambda import SarsaLambda
from deeprl.algos.tabular.thompson import Thompson
from deeprl.algos.tabular.ucb import UCB
from deeprl.algos.tabular.value_iteration import ValueIteration

TABULAR = (ValueIteration, PolicyIteration, QLearning, Sarsa, ExpectedSarsa, DoubleQLearning, SarsaLambda, DynaQ,
           MCControl, UCB, EpsilonGreedyBandit, Thompson)
