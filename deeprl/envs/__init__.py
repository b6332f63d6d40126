from deeprl.envs.make import check_env_id, make_env, make_vec_env, obs_space_of

__all__ = ["check_env_id", "make_env", "make_vec_env", "obs_space_of"]
