"""Gymnasium spaces <-> plain dicts, so a checkpoint can rebuild networks without the env."""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

from deeprl.core.errors import CheckpointError


def space_to_dict(space: spaces.Space) -> dict:
    if isinstance(space, spaces.Box):
        return {"type": "Box", "low": space.low, "high": space.high, "dtype": str(space.dtype)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": list(np.atleast_1d(space.n).tolist())}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(s) for k, s in space.spaces.items()}}
    raise CheckpointError(f"cannot store space {space}")


def space_from_dict(d: dict) -> spaces.Space:
    try:
        kind = d["type"]
        if kind == "Box":
            return spaces.Box(np.asarray(d["low"]), np.asarray(d["high"]), dtype=np.dtype(d["dtype"]))
        if kind == "Discrete":
            return spaces.Discrete(int(d["n"]), start=int(d["start"]))
        if kind == "MultiBinary":
            return spaces.MultiBinary(d["n"] if len(d["n"]) > 1 else d["n"][0])
        if kind == "Dict":
            return spaces.Dict({k: space_from_dict(s) for k, s in d["spaces"].items()})
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint has a malformed space description ({e})") from None
    raise CheckpointError(f"checkpoint has an unknown space type {d.get('type')!r}")


def same_space(a: spaces.Space, b: spaces.Space) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Dict):
        return a.spaces.keys() == b.spaces.keys() and all(same_space(a[k], b[k]) for k in a.spaces)
    if isinstance(a, spaces.Box):
        return a.shape == b.shape and np.allclose(a.low, b.low) and np.allclose(a.high, b.high)
    return a == b
