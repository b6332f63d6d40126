"""Registry of algorithms by name (the CLI's ALGO argument)."""
from deeprl.algos.pg.ppo import PPO

ALGORITHMS = {cls.name: cls for cls in (PPO,)}
