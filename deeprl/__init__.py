"""deeprl: the deep RL curriculum, implemented once, on one small core."""
from deeprl.algos import ALGORITHMS
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

__version__ = "0.1.0"
__all__ = ["A2C", "ALGORITHMS", "ActorCritic", "BC", "DAgger", "DDPG", "DQN", "FQI", "NAF", "PPO", "REINFORCE", "SAC",
           "SoftQ", "TD3", "__version__"]
