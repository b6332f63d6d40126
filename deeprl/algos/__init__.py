"""Registry of algorithms by name (the CLI's ALGO argument)."""
from deeprl.algos.pg.a2c import A2C
from deeprl.algos.pg.actor_critic import ActorCritic
from deeprl.algos.pg.ppo import PPO
from deeprl.algos.pg.reinforce import REINFORCE
from deeprl.algos.planning.mcts import MCTSAgent
from deeprl.algos.tabular import TABULAR

ALGORITHMS = {cls.name: cls for cls in (REINFORCE, ActorCritic, A2C, PPO)}
PLANNING = (MCTSAgent,)  # known-dynamics planners (deeprl/algos/planning)
ALGORITHMS.update({cls.name: cls for cls in PLANNING})
ALGORITHMS.update({cls.name: cls for cls in TABULAR})  # tables and bandits (deeprl/algos/tabular)
