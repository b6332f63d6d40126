"""Creating (vector) environments by id, with the wrappers every algorithm shares."""
from __future__ import annotations

import difflib

import gymnasium as gym
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode

from deeprl.core.errors import ConfigError
from deeprl.envs.vector import SyncVectorEnv


def _register_optional_envs() -> None:
    try:  # Atari ids (ALE/Pong-v5, ...) when ale-py is installed
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:
        pass


def check_env_id(env_id: str) -> None:
    _register_optional_envs()
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ConfigError(f"unknown environment {env_id!r}; {hint}run `deeprl list` for registered ids")


# Gymnasium registers these without a time limit. A deterministic policy that never reaches
# the goal (a greedy Q table walking into a wall) would make every episode, and so evaluation,
# endless; deeprl cuts their episodes (truncation) after this many steps.
DEFAULT_TIME_LIMITS = {"CliffWalking-v1": 1000, "CliffWalkingSlippery-v1": 1000}


def make_env(env_id: str, *, dict_obs: str = "flatten", render_mode: str | None = None, obs_history: int = 1,
             **kwargs) -> gym.Env:
    """One environment; Dict observations are flattened unless ``dict_obs='encode'``; the ids in
    ``DEFAULT_TIME_LIMITS`` get that time limit unless ``max_episode_steps`` is given; with
    ``obs_history=N > 1`` each observation stacks the last N (shape ``(N, *obs_shape)``, the
    reset observation repeated at the start of an episode)."""
    check_env_id(env_id)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    if env_id in DEFAULT_TIME_LIMITS:
        kwargs.setdefault("max_episode_steps", DEFAULT_TIME_LIMITS[env_id])
    atari = env_id.startswith("ALE/")
    if atari:
        kwargs.setdefault("frameskip", 1)  # AtariPreprocessing skips frames (max-pooling the last two)
    env = gym.make(env_id, **kwargs)
    if atari:
        env = atari_preprocessing(env)
    if isinstance(env.observation_space, spaces.Dict) and dict_obs == "flatten":
        env = gym.wrappers.FlattenObservation(env)
    if obs_history > 1:
        env = gym.wrappers.FrameStackObservation(env, obs_history, padding_type="reset")
    return env


ATARI_FRAME_STACK = 4


def frame_stack_of(env_id: str, obs_history: int = 1) -> int:
    """How many frames each observation of ``make_env(env_id, obs_history=...)`` stacks along
    its first axis (0: not a frame stack)."""
    if obs_history > 1:
        return obs_history
    return ATARI_FRAME_STACK if env_id.startswith("ALE/") else 0


def atari_preprocessing(env: gym.Env, frame_stack: int = ATARI_FRAME_STACK) -> gym.Env:
    """Mnih et al. (2015) preprocessing: up to 30 no-op starts, 4-frame skip with max-pooling,
    84x84 grayscale, a stack of the last 4 frames (uint8, channels first). Rewards are not
    clipped here (algorithms clip what they learn from, so reported returns are the game's)."""
    env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84,
                                          terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
    return gym.wrappers.FrameStackObservation(env, frame_stack)


def make_vec_env(env_id: str, num_envs: int, *, dict_obs: str = "flatten", vectorization: str = "sync",
                 render_mode: str | None = None, obs_history: int = 1) -> gym.vector.VectorEnv:
    """``num_envs`` copies in a vector env with same-step autoreset: when an episode ends,
    ``step`` returns the first observation of the next one and the true final observation in
    ``info['final_obs']``. ``sync``: deeprl's lean in-process loop; ``async``: gymnasium's
    subprocess ``AsyncVectorEnv`` (worth it only for slow environments)."""
    fns = [lambda: make_env(env_id, dict_obs=dict_obs, render_mode=render_mode, obs_history=obs_history)
           for _ in range(num_envs)]
    if vectorization == "async":
        return AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    return SyncVectorEnv(fns)


def obs_space_of(env_id: str, dict_obs: str = "flatten", obs_history: int = 1) -> tuple[spaces.Space, spaces.Space]:
    env = make_env(env_id, dict_obs=dict_obs, obs_history=obs_history)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()
