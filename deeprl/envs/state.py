"""Snapshot and restore the state of running environments, so a resumed run continues the
same episodes with the same random streams.

Supported: classic-control and toy-text style environments whose state lives in plain
numeric attributes, and MuJoCo environments (qpos, qvel, act, time). Environments holding
state in foreign objects (Box2D worlds, emulators) are reported as unsupported; resuming
them starts fresh episodes instead (the run says so).
"""
from __future__ import annotations

import numbers

import numpy as np

_SKIP = {"np_random", "_np_random", "spec", "metadata", "render_mode", "action_space", "observation_space"}


def _plain(v) -> bool:
    if v is None or isinstance(v, (bool, numbers.Number, str)):
        return True
    if isinstance(v, np.ndarray):
        return v.dtype.kind in "biuf"
    if isinstance(v, (tuple, list)):
        return all(isinstance(x, (bool, numbers.Number)) for x in v)
    return False


def _to_plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v.copy() if isinstance(v, np.ndarray) else v


def supports_state(env) -> bool:
    u = env.unwrapped
    return not any(hasattr(u, a) for a in ("world", "ale", "_world"))


def get_state(env) -> dict | None:
    """Return a dict of plain values (numbers, arrays, RNG state) or None if unsupported."""
    if not supports_state(env):
        return None
    layers = []
    e = env
    while True:
        attrs = {k: _to_plain(v) for k, v in vars(e).items()
                 if k not in _SKIP and not k.startswith("__") and _plain(v)}
        layers.append(attrs)
        if not hasattr(e, "env"):
            break
        e = e.env
    u = env.unwrapped
    state = {"layers": layers, "np_random": u.np_random.bit_generator.state if u._np_random is not None else None}
    if hasattr(u, "data") and hasattr(u.data, "qpos"):  # MuJoCo
        d = u.data
        state["mujoco"] = {"qpos": d.qpos.copy(), "qvel": d.qvel.copy(), "act": d.act.copy(),
                           "time": float(d.time)}
    return state


def set_state(env, state: dict) -> None:
    e = env
    for attrs in state["layers"]:
        for k, v in attrs.items():
            cur = getattr(e, k, None)
            if isinstance(cur, np.ndarray) and not isinstance(v, np.ndarray):
                v = np.asarray(v, dtype=cur.dtype)
            setattr(e, k, v)
        if not hasattr(e, "env"):
            break
        e = e.env
    u = env.unwrapped
    if state.get("np_random") is not None:
        u.np_random.bit_generator.state = state["np_random"]
    if "mujoco" in state:
        import mujoco

        m = state["mujoco"]
        u.data.qpos[:] = np.asarray(m["qpos"])
        u.data.qvel[:] = np.asarray(m["qvel"])
        if u.data.act.size:
            u.data.act[:] = np.asarray(m["act"])
        u.data.time = m["time"]
        mujoco.mj_forward(u.model, u.data)


def get_vec_state(venv) -> list | None:
    envs = getattr(venv, "envs", None)
    if envs is None:
        return None
    states = [get_state(e) for e in envs]
    return None if any(s is None for s in states) else states


def set_vec_state(venv, states: list) -> None:
    for e, s in zip(venv.envs, states):
        set_state(e, s)
