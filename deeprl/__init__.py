"""deeprl: the deep RL curriculum, implemented once, on one small core."""
from deeprl.algos import ALGORITHMS
from deeprl.algos.pg.ppo import PPO

__version__ = "0.1.0"
__all__ = ["ALGORITHMS", "PPO", "__version__"]
