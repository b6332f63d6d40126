"""deeprl: the deep RL curriculum, implemented once, on one small core.

``from deeprl import PPO`` imports PPO's module only (PEP 562 lazy attributes): a PPO run does
not pay for the planners, the tabular agents or the imitation stack."""
from deeprl.registry import ALGORITHMS

__version__ = "0.1.0"
_CLASSES = {"A2C": "a2c", "ActorCritic": "actor_critic", "BC": "bc", "DAgger": "dagger", "DDPG": "ddpg",
            "DQN": "dqn", "FQI": "fqi", "NAF": "naf", "PPO": "ppo", "REINFORCE": "reinforce", "SAC": "sac",
            "SoftQ": "soft_q", "TD3": "td3"}
__all__ = sorted(_CLASSES) + ["ALGORITHMS", "__version__"]


def __getattr__(attr: str):
    if attr in _CLASSES:
        return ALGORITHMS[_CLASSES[attr]]
    raise AttributeError(f"module 'deeprl' has no attribute {attr!r}")


def __dir__():
    return __all__
