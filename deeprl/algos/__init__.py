"""Registry of algorithms by name (the CLI's ALGO argument)."""
from deeprl.algos.imitation.bc import BC
from deeprl.algos.imitation.dagger import DAgger
from deeprl.algos.offpolicy.ddpg import DDPG
from deeprl.algos.offpolicy.dqn import DQN
from deeprl.algos.offpolicy.fqi import FQI
from deeprl.algos.offpolicy.naf import NAF
from deeprl.algos.offpolicy.sac import SAC
from deeprl.algos.offpolicy.soft_q import SoftQ
from deeprl.algos.offpolicy.td3 import TD3
from deeprl.algos.pg.a2c import A2C
from deeprl.algos.pg.actor_critic import ActorCritic
from deeprl.algos.pg.ppo import PPO
from deeprl.algos.pg.reinforce import REINFORCE
from deeprl.algos.planning.ilqr import ILQR
from deeprl.algos.planning.lqr import LQR
from deeprl.algos.planning.mcts import MCTSAgent
from deeprl.algos.planning.mpc import MPC
from deeprl.algos.tabular import TABULAR

ALGORITHMS = {cls.name: cls for cls in (REINFORCE, ActorCritic, A2C, PPO, DQN, SAC, TD3, DDPG, FQI, SoftQ, NAF)}
ALGORITHMS.update({cls.name: cls for cls in TABULAR})  # tables and bandits (deeprl/algos/tabular)
PLANNING = (ILQR, LQR, MCTSAgent, MPC)  # known-dynamics planners (deeprl/algos/planning)
ALGORITHMS.update({cls.name: cls for cls in PLANNING})
IMITATION = (BC, DAgger)  # learning from an expert (deeprl/algos/imitation)
ALGORITHMS.update({cls.name: cls for cls in IMITATION})
