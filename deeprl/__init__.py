"""deeprl: the deep RL curriculum, implemented once, on one small core."""
from deeprl.algos import ALGORITHMS
from deeprl.algos.pg.a2c import A2C
from deeprl.algos.pg.actor_critic import ActorCritic
from deeprl.algos.pg.ppo import PPO
from deeprl.algos.pg.reinforce import REINFORCE

__version__ = "0.1.0"
__all__ = ["A2C", "ALGORITHMS", "ActorCritic", "PPO", "REINFORCE", "__version__"]
