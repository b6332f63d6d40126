from deeprl.envs import bandits, gridworld, linear_quadratic, maze, obstacle, point_obstacles
from deeprl.envs.make import check_env_id, make_env, make_vec_env, obs_space_of

gridworld.register_envs()  # deeprl/GridWorld-v0, deeprl/FourRooms-v0, deeprl/CliffGridWorld-v0
bandits.register_envs()  # deeprl/BernoulliBandit-v0, deeprl/GaussianBandit-v0
linear_quadratic.register_envs()  # deeprl/LinearQuadratic-v0
maze.register_envs()  # deeprl/DeterministicMaze-v0
obstacle.register_envs()  # deeprl/ObstacleCourse-v0
point_obstacles.register_envs()  # deeprl/Obstacles-v0 (CS285 HW4)

__all__ = ["check_env_id", "make_env", "make_vec_env", "obs_space_of"]
