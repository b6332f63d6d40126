"""Copy and restore the state of a simulator, for planners that search by trying actions and
rewinding (MCTS). The API has three calls on an environment:

- ``clone_state(env) -> state``: an independent copy of everything that determines the future;
- ``restore_state(env, state)``: put the env back into that state (the same state may be
  restored any number of times; the clone is never mutated);
- ``state_from_observation(env, obs) -> state``: the state behind an observation, for
  environments whose observation *is* the full state (so an agent that is only handed
  observations, as in evaluation, can plan from them).

Environments may implement them as methods of the same names (``deeprl/DeterministicMaze-v0``,
``deeprl/LinearQuadratic-v0`` do); for several Gymnasium environments the adapters below work
on the unwrapped env's attributes. :func:`search_simulator` makes the fast, unwrapped
simulator a planner steps (no time limit or checker wrappers) and refuses, with one line naming
the supported ids, an environment that is not a deterministic clonable simulator with
discrete actions.

For any classic-control or toy-text env, :func:`clone_state` falls back on the generic attribute
snapshot of :mod:`deeprl.envs.state` (numbers, arrays and the RNG state); that is enough to
rewind, but only the ids in :data:`SEARCH_ENVS` are known to be deterministic and to have an
observation that is the whole state.
"""
from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np

from deeprl.core.errors import ConfigError
from deeprl.envs import state as env_state


def _toy_text_state(u, obs):
    return {"s": int(obs), "lastaction": None}


def _cartpole_state(u, obs):  # observation == [x, x_dot, theta, theta_dot]
    return {"state": np.asarray(obs, dtype=np.float64).copy(), "steps_beyond_terminated": None}


def _mountaincar_state(u, obs):  # observation == [position, velocity]
    return {"state": np.asarray(obs, dtype=np.float64).copy()}


def _acrobot_state(u, obs):  # observation == [cos t1, sin t1, cos t2, sin t2, dt1, dt2]
    o = np.asarray(obs, dtype=np.float64)
    return {"state": np.array([np.arctan2(o[1], o[0]), np.arctan2(o[3], o[2]), o[4], o[5]])}


# Deterministic Gymnasium envs with discrete actions whose observation is the full state:
# id -> (unwrapped attributes that make up the state, observation -> those attributes).
_ADAPTERS = {
    "CartPole-v1": (("state", "steps_beyond_terminated"), _cartpole_state),
    "MountainCar-v0": (("state",), _mountaincar_state),
    "Acrobot-v1": (("state",), _acrobot_state),
    "CliffWalking-v1": (("s", "lastaction"), _toy_text_state),
    "Taxi-v4": (("s", "lastaction"), _toy_text_state),
}
SEARCH_ENVS = ("deeprl/DeterministicMaze-v0", *_ADAPTERS)


def _adapter(env):
    spec = env.unwrapped.spec
    return _ADAPTERS.get(spec.id) if spec is not None else None


def clone_state(env):
    """An independent copy of ``env``'s state (see the module docstring)."""
    u = env.unwrapped
    if hasattr(u, "clone_state"):
        return u.clone_state()
    ad = _adapter(env)
    if ad is not None:
        return {k: copy.deepcopy(getattr(u, k)) for k in ad[0]}
    snap = env_state.get_state(env)
    if snap is None:
        raise ConfigError(f"{type(u).__name__} cannot be cloned (its state lives in a foreign object)")
    return snap


def restore_state(env, state) -> None:
    """Put ``env`` back into ``state`` (from :func:`clone_state` or :func:`state_from_observation`)."""
    u = env.unwrapped
    if hasattr(u, "restore_state"):
        u.restore_state(state)
    elif _adapter(env) is not None:
        for k, v in state.items():
            setattr(u, k, copy.deepcopy(v))
    else:
        env_state.set_state(env, copy.deepcopy(state))


def state_from_observation(env, obs):
    """The state behind ``obs`` for envs whose observation is the whole state."""
    u = env.unwrapped
    if hasattr(u, "state_from_observation"):
        return u.state_from_observation(obs)
    ad = _adapter(env)
    if ad is None:
        raise ConfigError(f"{type(u).__name__}: the state cannot be recovered from an observation")
    return ad[1](u, obs)


def search_simulator(env_id: str, algo: str = "mcts") -> gym.Env:
    """The unwrapped simulator of a supported env id (see :data:`SEARCH_ENVS`), reset once."""
    from deeprl.envs.make import make_env

    supported = ", ".join(SEARCH_ENVS)
    env = make_env(env_id)
    u = env.unwrapped
    own = all(hasattr(u, a) for a in ("clone_state", "restore_state", "state_from_observation"))
    if not (own or env_id in _ADAPTERS) or not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ConfigError(f"{algo} needs a deterministic, clonable simulator with discrete actions; "
                          f"{env_id!r} is not one (supported: {supported})")
    env.reset(seed=0)
    return u
