import gymnasium as _gym

from deeprl.envs import bandits, cartpole_continuous, gridworld, linear_quadratic, maze, obstacle, point_obstacles
from deeprl.envs.make import check_env_id, make_env, make_vec_env, obs_space_of

gridworld.register_envs()  # deeprl/GridWorld-v0, deeprl/FourRooms-v0, deeprl/CliffGridWorld-v0
bandits.register_envs()  # deeprl/BernoulliBandit-v0, deeprl/GaussianBandit-v0
linear_quadratic.register_envs()  # deeprl/LinearQuadratic-v0
maze.register_envs()  # deeprl/DeterministicMaze-v0
obstacle.register_envs()  # deeprl/ObstacleCourse-v0
point_obstacles.register_envs()  # deeprl/Obstacles-v0 (CS285 HW4)
cartpole_continuous.register_envs()  # deeprl/ContinuousCartPole-v0 (mbrl-lib's PETS example)
# envs whose modules import MuJoCo register by name, so that importing deeprl does not load it
_LAZY = {"deeprl/Cheetah-v0": ("deeprl.envs.cheetah:CheetahEnv", 500)}  # CS285 HW4's cheetah
for _id, (_entry, _steps) in _LAZY.items():
    if _id not in _gym.registry:
        _gym.register(_id, entry_point=_entry, max_episode_steps=_steps)

__all__ = ["check_env_id", "make_env", "make_vec_env", "obs_space_of"]
