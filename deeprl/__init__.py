"""deeprl: the deep RL curriculum, implemented once, on one small core.

``from deeprl import PPO`` imports PPO's module only (PEP 562 lazy attributes): a PPO run does
not pay for the planners, the tabular agents or the imitation stack."""
import os

# Idle OpenMP threads sleep instead of spinning (libgomp reads this when torch is first imported).
# With spinning, two 2-thread runs side by side on 2 cores took 4.3x as long as one alone; with
# PASSIVE they take about 2x, alone is no slower, and every number computed is the same.
# Set OMP_WAIT_POLICY yourself (e.g. ACTIVE) to override; it has no effect if torch was imported first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from deeprl.registry import ALGORITHMS, FAMILIES  # noqa: E402

__version__ = "0.1.0"
# every registered algorithm by its class name: ``from deeprl import PPO, MBPO, PETS, ...``
_CLASSES = {target.split(":")[1]: name for family in FAMILIES.values() for name, target in family.items()}
__all__ = sorted(_CLASSES) + ["ALGORITHMS", "__version__"]


def __getattr__(attr: str):
    if attr in _CLASSES:
        return ALGORITHMS[_CLASSES[attr]]
    raise AttributeError(f"module 'deeprl' has no attribute {attr!r}")


def __dir__():
    return __all__
