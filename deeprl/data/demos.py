"""Demonstration datasets (expert trajectories for imitation and offline RL, CS285 lectures 2
and 15) in the Minari format, so datasets move freely between deeprl and ``minari``.

In memory (:class:`Demonstrations`) episodes are stored one after another: step ``i`` is
``(observations[i], actions[i], rewards[i], terminations[i], truncations[i],
next_observations[i])`` and ``episode_lengths`` marks where each episode ends. A truncated
episode keeps its true final observation in ``next_observations``, which bootstrapping needs.

On disk, Minari 0.5's HDF5 layout, one directory per dataset (``<root>/<namespace>/<name>-v<N>``
for ``minari.load_dataset("<namespace>/<name>-v<N>")``, with ``<root>`` = ``$MINARI_DATASETS_PATH``
or ``~/.minari/datasets``)::

    data/main_data.hdf5     one group per episode, ``episode_0``, ``episode_1``, ...:
                              attrs   id, total_steps (int64)
                              observations (T+1, ...)   every observation once, the final one included
                              actions (T, ...), rewards (T,) float64, terminations (T,) bool,
                              truncations (T,) bool, infos (empty group)
    data/metadata.json      total_episodes, total_steps, data_format "hdf5", jpeg_encoding false,
                              observation_space and action_space (JSON strings in Minari's own
                              serialisation), env_spec (when the env is registered), dataset_id,
                              minari_version, dataset_size, Minari's descriptive keys found in
                              ``Demonstrations.metadata`` (algorithm_name, author, ...), and under
                              ``"deeprl"``: env_id and the whole ``Demonstrations.metadata``

Inside an episode ``next_observations[t]`` must equal ``observations[t + 1]``: the layout stores
each observation once. Saving writes a temporary sibling directory and renames it into place.

Loading also reads datasets written by Minari itself (image observations that Minari stored
JPEG-encoded are decoded) and D4RL-style flat HDF5 files: datasets ``observations``, ``actions``,
``rewards``, ``terminals``, optional ``timeouts`` and ``next_observations``. Episodes end at
``terminals | timeouts``; rows after the last end form a final episode cut by the end of the
data, whose last step is marked truncated. Without ``next_observations`` the successor of a step
is the next row of its episode; a terminal step (its successor is never bootstrapped from) keeps
its own observation as a placeholder; the last step of a timed-out or cut episode has no
recorded successor and is dropped, so the step before it becomes a truncation. Only Box,
Discrete, MultiDiscrete and MultiBinary spaces are supported (no Dict or Tuple observations).
"""
from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
from gymnasium import spaces

from deeprl.core.errors import DatasetError

MAIN_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"
MINARI_VERSION = "0.5.4"  # the Minari release whose layout this module writes (it reads 0.4.0 to 0.5.4)
FORMAT = "deeprl-demos"
VERSION = 1
# Minari's descriptive metadata keys, copied between metadata.json and Demonstrations.metadata
MINARI_INFO_KEYS = ("algorithm_name", "author", "author_email", "code_permalink", "description",
                    "ref_min_score", "ref_max_score", "num_episodes_average_score", "requirements")
D4RL_KEYS = ("observations", "actions", "rewards", "terminals")
ACCEPTED = ("a Minari dataset directory, its data/main_data.hdf5, a Minari dataset id such as ns/name-v0 "
            "under $MINARI_DATASETS_PATH or ~/.minari/datasets, or a D4RL-style HDF5 file")
# Minari's dataset id grammar: (namespace/)name-v<version>, the version required
DATASET_ID_RE = re.compile(r"^(?:(?P<namespace>[-_\w][-_\w/]*[-_\w]+)/)?(?P<name>[-_\w]+?)-v(?P<version>\d+)$")


# ---------------------------------------------------------------------------------------------
# in memory


@dataclass(eq=False)
class Demonstrations:
    """Episodes stored one after another (see the module docstring); checked on construction."""

    observations: np.ndarray  # (N, *obs_shape): the observation at each step
    actions: np.ndarray  # (N, *act_shape)
    rewards: np.ndarray  # (N,) float32
    terminations: np.ndarray  # (N,) bool
    truncations: np.ndarray  # (N,) bool
    next_observations: np.ndarray  # (N, *obs_shape): the observation after each step
    episode_lengths: np.ndarray  # (E,) int64, sum == N; episodes one after another
    observation_space: gym.Space | None = None
    action_space: gym.Space | None = None
    env_id: str | None = None
    metadata: dict = field(default_factory=dict)  # JSON-able: expert name, expert_return_mean, command, ...

    def __post_init__(self):
        self.observations = np.asarray(self.observations)
        self.next_observations = np.asarray(self.next_observations)
        self.actions = np.asarray(self.actions)
        self.rewards = np.asarray(self.rewards, np.float32)
        self.terminations = np.asarray(self.terminations, bool)
        self.truncations = np.asarray(self.truncations, bool)
        self.episode_lengths = np.asarray(self.episode_lengths, np.int64).reshape(-1)
        n = len(self.observations)
        for name in ("actions", "rewards", "terminations", "truncations", "next_observations"):
            if len(getattr(self, name)) != n:
                raise DatasetError(f"demonstrations have {n} observations but {len(getattr(self, name))} {name}")
        for name in ("rewards", "terminations", "truncations"):
            if getattr(self, name).ndim != 1:
                raise DatasetError(f"demonstration {name} must be 1-D, got shape {getattr(self, name).shape}")
        if self.next_observations.shape != self.observations.shape:
            raise DatasetError(f"next_observations have shape {self.next_observations.shape}, "
                               f"observations {self.observations.shape}")
        if (self.episode_lengths <= 0).any() or int(self.episode_lengths.sum()) != n:
            raise DatasetError(f"episode_lengths must be positive and sum to the {n} steps, "
                               f"got sum {int(self.episode_lengths.sum())}")
        for name in ("observation_space", "action_space"):
            space = getattr(self, name)
            if space is not None:
                _check_supported(space, name)
                _check_matches(space, self.observations if name == "observation_space" else self.actions, name)

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_lengths)

    def episodes(self) -> list[slice]:
        """Step range of each episode."""
        ends = np.cumsum(self.episode_lengths)
        return [slice(int(e - n), int(e)) for n, e in zip(self.episode_lengths, ends)]

    def episode_returns(self) -> np.ndarray:
        """(E,) undiscounted return of each episode (float64)."""
        if self.num_episodes == 0:
            return np.zeros(0)
        starts = np.concatenate([[0], np.cumsum(self.episode_lengths)[:-1]])
        return np.add.reduceat(self.rewards.astype(np.float64), starts)

    def append(self, other: Demonstrations) -> Demonstrations:
        """A new dataset with ``other``'s episodes after these. Spaces, env ids, shapes and dtypes
        must agree (an unknown one, None, takes the other's); metadata is this dataset's."""
        merged = {}
        for name in ("observation_space", "action_space", "env_id"):
            a, b = getattr(self, name), getattr(other, name)
            if a is not None and b is not None and a != b:
                raise DatasetError(f"cannot append demonstrations with {name} {b} to ones with {a}")
            merged[name] = a if a is not None else b
        for name in ("observations", "actions"):
            a, b = getattr(self, name), getattr(other, name)
            if a.shape[1:] != b.shape[1:] or a.dtype != b.dtype:
                raise DatasetError(f"cannot append {name} of shape {b.shape[1:]} {b.dtype} "
                                   f"to {name} of shape {a.shape[1:]} {a.dtype}")
        cat = {k: np.concatenate([getattr(self, k), getattr(other, k)])
               for k in ("observations", "actions", "rewards", "terminations", "truncations",
                         "next_observations", "episode_lengths")}
        return Demonstrations(**cat, **merged, metadata=dict(self.metadata))

    @classmethod
    def from_episodes(cls, episodes: list[dict], observation_space=None, action_space=None, env_id=None,
                      metadata=None) -> Demonstrations:
        """Build from per-episode dicts: observations (T+1, ...) with the final observation,
        actions (T, ...), rewards (T,), terminations (T,), truncations (T,)."""
        if not episodes:
            raise DatasetError("no episodes given; a demonstration dataset needs at least one")
        parts = {k: [] for k in ("observations", "next_observations", "actions", "rewards", "terminations",
                                 "truncations")}
        lengths = []
        for i, ep in enumerate(episodes):
            obs = np.asarray(ep["observations"])
            t = len(np.asarray(ep["rewards"]))
            for key in ("actions", "terminations", "truncations"):
                if len(np.asarray(ep[key])) != t:
                    raise DatasetError(f"episode {i} has {t} rewards but {len(np.asarray(ep[key]))} {key}")
            if len(obs) != t + 1:
                raise DatasetError(f"episode {i} has {t} steps but {len(obs)} observations; expected {t + 1} "
                                   "(the final observation included)")
            if t == 0:
                raise DatasetError(f"episode {i} has no steps")
            parts["observations"].append(obs[:-1])
            parts["next_observations"].append(obs[1:])
            for key in ("actions", "rewards", "terminations", "truncations"):
                parts[key].append(np.asarray(ep[key]))
            lengths.append(t)
        return cls(**{k: np.concatenate(v) for k, v in parts.items()}, episode_lengths=np.array(lengths, np.int64),
                   observation_space=observation_space, action_space=action_space, env_id=env_id,
                   metadata=dict(metadata or {}))


# ---------------------------------------------------------------------------------------------
# spaces, serialised exactly as minari.serialization does


def _check_supported(space: gym.Space, what: str) -> None:
    if isinstance(space, (spaces.Dict, spaces.Tuple)):
        raise DatasetError(f"{what} is a {type(space).__name__} space; Dict and Tuple spaces are not supported yet "
                           "(Box, Discrete, MultiDiscrete and MultiBinary are)")
    if not isinstance(space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
        raise DatasetError(f"{what} {space} is not supported; use Box, Discrete, MultiDiscrete or MultiBinary")


def _check_matches(space: gym.Space, data: np.ndarray, what: str) -> None:
    shape = () if isinstance(space, spaces.Discrete) else tuple(space.shape)
    if tuple(data.shape[1:]) != shape:
        raise DatasetError(f"{what} {space} has shape {shape} but the data has per-step shape {data.shape[1:]}")


def serialize_space(space: gym.Space) -> str:
    """JSON string of ``space`` identical to ``minari.serialization.serialize_space``."""
    _check_supported(space, "space")
    if isinstance(space, spaces.Box):
        d = {"type": "Box", "dtype": str(space.dtype), "shape": list(space.shape),
             "low": space.low.tolist(), "high": space.high.tolist()}
    elif isinstance(space, spaces.Discrete):
        d = {"type": "Discrete", "dtype": "int64", "start": int(space.start), "n": int(space.n)}
    elif isinstance(space, spaces.MultiDiscrete):
        d = {"type": "MultiDiscrete", "dtype": str(space.dtype), "nvec": space.nvec.tolist(),
             "start": space.start.tolist()}
    else:
        d = {"type": "MultiBinary", "n": space.n if isinstance(space.n, int) else np.asarray(space.n).tolist()}
    return json.dumps(d)


def deserialize_space(text: str, where: str) -> gym.Space:
    """Inverse of :func:`serialize_space` (Minari's ``deserialize_space`` for these types)."""
    try:
        d = json.loads(text) if isinstance(text, str) else text
        kind = d["type"]
        if kind == "Box":
            low = np.array(d["low"], dtype=d["dtype"])
            high = np.array(d["high"], dtype=d["dtype"])
            return spaces.Box(low=low, high=high, shape=tuple(d["shape"]), dtype=d["dtype"])
        if kind == "Discrete":
            return spaces.Discrete(n=d["n"], start=d["start"])
        if kind == "MultiDiscrete":
            return spaces.MultiDiscrete(nvec=d["nvec"], dtype=d["dtype"], start=d["start"])
        if kind == "MultiBinary":
            return spaces.MultiBinary(n=d["n"])
    except (ValueError, TypeError, KeyError, AssertionError) as e:
        raise DatasetError(f"{where} holds an unreadable space ({type(e).__name__}: {e})") from None
    if kind in ("Dict", "Tuple"):
        raise DatasetError(f"{where} has a {kind} space; {kind} spaces are not supported yet (Box, Discrete, "
                           "MultiDiscrete, MultiBinary are)")
    raise DatasetError(f"{where} has a {kind} space; supported: Box, Discrete, MultiDiscrete, MultiBinary")


def infer_space(data: np.ndarray) -> gym.Space | None:
    """A Box as wide as the dtype allows for float data and for integer data with a per-step
    shape; None where no safe guess exists (integer scalars might be Discrete, bools, ...)."""
    shape = tuple(data.shape[1:])
    if np.issubdtype(data.dtype, np.floating):
        return spaces.Box(-np.inf, np.inf, shape, data.dtype)
    if np.issubdtype(data.dtype, np.integer) and shape:
        info = np.iinfo(data.dtype)
        return spaces.Box(info.min, info.max, shape, data.dtype)
    return None


def _is_image_space(space: gym.Space | None) -> bool:
    """Minari's test for spaces it JPEG-encodes."""
    return (isinstance(space, spaces.Box) and len(space.shape) in (2, 3) and space.shape[0] >= 32
            and space.shape[1] >= 32 and space.dtype == np.uint8 and bool(np.all(space.low == 0))
            and bool(np.all(space.high == 255)))


# ---------------------------------------------------------------------------------------------
# dataset ids and paths


def datasets_root() -> Path:
    """Minari's local dataset root: ``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets`` (not created)."""
    root = os.environ.get("MINARI_DATASETS_PATH")
    return Path(root) if root else Path.home() / ".minari" / "datasets"


def _slug(text: str) -> str:
    return re.sub(r"[^-\w]+", "_", text).strip("_") or "env"


def default_dataset_id(path: Path, env_id: str | None) -> str:
    """The id a dataset at ``path`` gets: its location when ``path`` lies under the Minari root
    (so ``minari.list_local_datasets`` agrees), else ``deeprl/<env_id>/demos-v0``."""
    try:
        rel = path.resolve().relative_to(datasets_root().resolve()).as_posix()
        if DATASET_ID_RE.match(rel):
            return rel
    except ValueError:
        pass
    env = "/".join(_slug(part) for part in env_id.split("/")) if env_id else None
    return f"deeprl/{env}/demos-v0" if env else "deeprl/demos-v0"


def _env_spec_json(env_id: str | None) -> str | None:
    spec = gym.envs.registry.get(env_id) if env_id else None
    if spec is None:
        return None
    try:
        return spec.to_json()
    except Exception:  # callable entry point or unserialisable kwargs: Minari then has no env_spec
        return None


# ---------------------------------------------------------------------------------------------
# saving


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _minari_info(metadata: dict) -> dict:
    """Minari's descriptive keys from our metadata, in the types Minari expects."""
    out = {}
    for key in MINARI_INFO_KEYS:
        value = metadata.get(key)
        if value is None:
            continue
        if key in ("author", "author_email"):  # Minari stores sets as lists
            value = [value] if isinstance(value, str) else sorted(str(v) for v in value)
        elif key in ("algorithm_name", "code_permalink", "description"):
            value = str(value)
        out[key] = value
    return out


def _check_single_storage(demos: Demonstrations) -> None:
    """Inside an episode next_observations[t] must be observations[t + 1]."""
    ends = np.cumsum(demos.episode_lengths) - 1
    inner = np.ones(len(demos), bool)
    inner[ends] = False
    idx = np.flatnonzero(inner)
    a, b = demos.next_observations[idx], demos.observations[idx + 1]
    same = (a == b) | ((a != a) & (b != b)) if np.issubdtype(a.dtype, np.inexact) else a == b
    bad = idx[~same.reshape(len(idx), -1).all(axis=1)] if len(idx) else idx
    if len(bad):
        raise DatasetError(f"next_observations[{bad[0]}] differs from observations[{bad[0] + 1}] inside an episode; "
                           "the Minari layout stores each observation once")


def _write_hdf5(demos: Demonstrations, file: Path) -> None:
    with h5py.File(file, "w", track_order=True) as f:
        for i, s in enumerate(demos.episodes()):
            g = f.create_group(f"episode_{i}")
            g.attrs["id"] = np.int64(i)
            g.attrs["total_steps"] = np.int64(s.stop - s.start)
            obs = np.concatenate([demos.observations[s], demos.next_observations[s.stop - 1:s.stop]])
            for key, data in (("observations", obs), ("actions", demos.actions[s]),
                              ("rewards", demos.rewards[s].astype(np.float64)),
                              ("terminations", demos.terminations[s]), ("truncations", demos.truncations[s])):
                g.create_dataset(key, data=data, chunks=True, maxshape=(None, *data.shape[1:]))
            g.create_group("infos")


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _sibling(path: Path, kind: str) -> Path:
    """A new hidden directory next to ``path`` (created with the umask's permissions, unlike mkdtemp)."""
    while True:
        candidate = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue


def _is_minari_dir(path: Path) -> bool:
    return (path / "data" / METADATA_FILE).is_file() or (path / "data" / MAIN_FILE).is_file()


def save_demos(demos: Demonstrations, path, dataset_id: str | None = None, *, overwrite: bool = False) -> Path:
    """Write ``demos`` as the Minari dataset directory ``path`` and return it. Refuses an
    existing dataset unless ``overwrite``, and never replaces a non-empty directory that is not
    a Minari dataset. Spaces left None are inferred from the data (Minari needs both)."""
    path = Path(path)
    dataset_id = dataset_id or default_dataset_id(path, demos.env_id)
    if not DATASET_ID_RE.match(dataset_id):
        raise DatasetError(f"dataset id {dataset_id!r} is malformed; Minari ids look like name-v0 or "
                           "namespace/name-v0")
    if path.exists() or path.is_symlink():
        empty_dir = path.is_dir() and not any(path.iterdir())
        if not empty_dir and not overwrite:
            raise DatasetError(f"{path} already exists; pass overwrite=True to replace it")
        if not empty_dir and not (path.is_file() or _is_minari_dir(path)):
            raise DatasetError(f"{path} exists and is not a Minari dataset; refusing to replace it")
    if demos.num_episodes == 0:
        raise DatasetError(f"no episodes to save to {path}")
    obs_space = demos.observation_space or infer_space(demos.observations)
    act_space = demos.action_space or infer_space(demos.actions)
    for name, space, data in (("observation_space", obs_space, demos.observations),
                              ("action_space", act_space, demos.actions)):
        if space is None:
            raise DatasetError(f"{name} is None and cannot be inferred from {data.dtype} data of per-step shape "
                               f"{data.shape[1:]}; set it (e.g. Discrete(n)) before saving")
    _check_single_storage(demos)
    extra = {"format": FORMAT, "version": VERSION, "env_id": demos.env_id, "metadata": demos.metadata}
    try:
        extra = json.loads(json.dumps(extra, default=_json_default))
    except (TypeError, ValueError) as e:
        raise DatasetError(f"demonstration metadata is not JSON-serialisable ({e})") from None

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    old = None
    try:
        data_dir = tmp / "data"
        data_dir.mkdir()
        _write_hdf5(demos, data_dir / MAIN_FILE)
        meta = {"total_episodes": demos.num_episodes, "total_steps": len(demos), "data_format": "hdf5",
                "jpeg_encoding": False, "observation_space": serialize_space(obs_space),
                "action_space": serialize_space(act_space)}
        spec = _env_spec_json(demos.env_id)
        if spec is not None:
            meta["env_spec"] = spec
        meta["dataset_id"] = dataset_id
        meta.update(_minari_info(demos.metadata))
        meta["minari_version"] = MINARI_VERSION
        meta["dataset_size"] = round((data_dir / MAIN_FILE).stat().st_size / 1e6, 1)
        meta["deeprl"] = extra
        with open(data_dir / METADATA_FILE, "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        _fsync(data_dir / MAIN_FILE)
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
        elif path.exists() or path.is_symlink():
            old = _sibling(path, "old")
            os.replace(path, old / "replaced")
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            if (old / "replaced").exists() and not path.exists():
                os.replace(old / "replaced", path)  # put the previous dataset back
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


# ---------------------------------------------------------------------------------------------
# loading


def _resolve(source) -> tuple[Path, Path | None]:
    """(HDF5 file, metadata.json or None) for any accepted form of ``source``."""
    path = Path(source)
    if not path.exists() and isinstance(source, str) and DATASET_ID_RE.match(source):
        candidate = datasets_root() / source
        if candidate.exists():
            path = candidate
    if not path.exists():
        looked = f" (no {datasets_root() / source} either)" if isinstance(source, str) and DATASET_ID_RE.match(source) \
            else ""
        raise DatasetError(f"{source} does not exist{looked}; expected {ACCEPTED}")
    if path.is_dir():
        data_dir = path / "data" if (path / "data").is_dir() else path
        meta = data_dir / METADATA_FILE
        meta = meta if meta.is_file() else None
        if not (data_dir / MAIN_FILE).is_file():
            fmt = _read_json(meta).get("data_format") if meta else None
            if fmt and fmt != "hdf5":
                raise DatasetError(f"{path} is a Minari dataset in the {fmt} format; only hdf5 is supported")
            raise DatasetError(f"{path} is a directory without data/{MAIN_FILE}; expected {ACCEPTED}")
        return data_dir / MAIN_FILE, meta
    meta = path.parent / METADATA_FILE
    return path, meta if path.name == MAIN_FILE and meta.is_file() else None


def _read_json(path: Path) -> dict:
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path} is not readable JSON ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{path} holds {type(meta).__name__}, expected a JSON object of dataset metadata")
    return meta


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:160]


def _decode_jpeg(frames, shape, where: str) -> np.ndarray:
    from PIL import Image  # Pillow comes with matplotlib

    out = np.empty((len(frames), *shape), np.uint8)
    for i, frame in enumerate(frames):
        image = np.asarray(Image.open(io.BytesIO(np.asarray(frame, np.uint8).tobytes())), np.uint8)
        if image.shape != tuple(shape):
            raise DatasetError(f"{where}: a JPEG frame decodes to shape {image.shape}, the space says {shape}")
        out[i] = image
    return out


def _read_leaf(group: h5py.Group, key: str, where: str, space=None, jpeg=False) -> np.ndarray:
    if key not in group:
        raise DatasetError(f"{where} lacks '{key}'; a Minari episode has observations, actions, rewards, "
                           "terminations and truncations")
    item = group[key]
    if isinstance(item, h5py.Group):
        raise DatasetError(f"{where}/{key} is a group: Dict and Tuple spaces are not supported yet (Box, Discrete, "
                           "MultiDiscrete and MultiBinary are)")
    data = item[()]
    if jpeg and _is_image_space(space) and (data.dtype == object or data.shape[1:] != tuple(space.shape)):
        data = _decode_jpeg(data, space.shape, f"{where}/{key}")
    return data


def _read_minari(f: h5py.File, file: Path, meta: dict, names: list[str]) -> tuple[list[dict], dict]:
    obs_space = deserialize_space(meta["observation_space"], f"{file}'s metadata") \
        if "observation_space" in meta else None
    act_space = deserialize_space(meta["action_space"], f"{file}'s metadata") if "action_space" in meta else None
    jpeg = bool(meta.get("jpeg_encoding", True))
    episodes = []
    for name in names:
        g, where = f[name], f"{file}:{name}"
        if not isinstance(g, h5py.Group):
            raise DatasetError(f"{where} is not a group; expected a Minari episode")
        ep = {"observations": _read_leaf(g, "observations", where, obs_space, jpeg),
              "actions": _read_leaf(g, "actions", where, act_space, jpeg)}
        for key in ("rewards", "terminations", "truncations"):
            ep[key] = _read_leaf(g, key, where)
        t = len(ep["rewards"])
        if "total_steps" in g.attrs and int(g.attrs["total_steps"]) != t:
            raise DatasetError(f"{where} says total_steps={int(g.attrs['total_steps'])} but has {t} rewards")
        for key in ("actions", "terminations", "truncations"):
            if len(ep[key]) != t:
                raise DatasetError(f"{where} has {t} rewards but {len(ep[key])} {key}")
        if len(ep["observations"]) != t + 1:
            raise DatasetError(f"{where} has {t} steps but {len(ep['observations'])} observations; expected {t + 1}")
        episodes.append(ep)
    return episodes, {"observation_space": obs_space, "action_space": act_space}


def _split_d4rl(f: h5py.File, file: Path) -> dict:
    """Demonstrations fields from a D4RL-style flat file (see the module docstring)."""
    obs = f["observations"][()]
    n = len(obs)
    actions, rewards = f["actions"][()], f["rewards"][()].reshape(-1)
    term = f["terminals"][()].astype(bool).reshape(-1)
    trunc = f["timeouts"][()].astype(bool).reshape(-1) if "timeouts" in f else np.zeros(n, bool)
    nxt = f["next_observations"][()] if "next_observations" in f else None
    for key, arr in (("actions", actions), ("rewards", rewards), ("terminals", term), ("timeouts", trunc),
                     ("next_observations", nxt)):
        if arr is not None and len(arr) != n:
            raise DatasetError(f"{file} has {n} observations but {len(arr)} {key}")
    if nxt is not None and nxt.shape != obs.shape:
        raise DatasetError(f"{file} has next_observations of shape {nxt.shape}, observations {obs.shape}")
    if n == 0:
        raise DatasetError(f"{file} holds D4RL datasets without rows")
    ends = np.flatnonzero(term | trunc) + 1
    if not len(ends) or ends[-1] != n:
        ends = np.append(ends, n)
        trunc[n - 1] = True  # the data stops here; the episode did not terminate
    starts = np.concatenate([[0], ends[:-1]])
    keep = np.ones(n, bool)
    if nxt is None:
        successor = np.arange(1, n + 1)
        for start, end in zip(starts, ends):
            if term[end - 1]:  # its successor is never bootstrapped from: its own observation stands in
                successor[end - 1] = end - 1
            else:  # timed out or cut: the successor is unknown, drop the step
                keep[end - 1] = False
                trunc[max(start, end - 2)] = True
        nxt = obs[successor[keep]]
    lengths = np.add.reduceat(keep.astype(np.int64), starts)
    return {"observations": obs[keep], "actions": actions[keep], "rewards": rewards[keep],
            "terminations": term[keep], "truncations": trunc[keep], "next_observations": nxt,
            "episode_lengths": lengths[lengths > 0]}


def load_demos(source) -> Demonstrations:
    """Read a Minari dataset (directory, its ``data/main_data.hdf5``, or a local dataset id) or a
    D4RL-style HDF5 file. Spaces come from metadata.json when present, else are inferred.
    Reads only; anything malformed is a one-line DatasetError."""
    file, meta_path = _resolve(source)
    meta = _read_json(meta_path) if meta_path is not None else {}
    try:
        f = h5py.File(file, "r")
    except Exception as e:  # h5py raises OSError for non-HDF5, truncated or unreadable files
        raise DatasetError(f"{file} is not a readable HDF5 file; it may be truncated or corrupt "
                           f"({_first_line(e)})") from None
    try:
        with f:
            names = sorted((k for k in f.keys() if re.fullmatch(r"episode_\d+", k)), key=lambda k: int(k[8:]))
            if names:
                if "total_episodes" in meta and int(meta["total_episodes"]) != len(names):
                    raise DatasetError(f"{meta_path} says {meta['total_episodes']} episodes but {file} holds "
                                       f"{len(names)}")
                episodes, found = _read_minari(f, file, meta, names)
            elif all(k in f for k in D4RL_KEYS):
                episodes, found = None, _split_d4rl(f, file)
            else:
                raise DatasetError(f"{file} holds no episodes in the Minari or D4RL layout (expected groups "
                                   f"episode_0, episode_1, ... or datasets {', '.join(D4RL_KEYS)}); "
                                   f"found {sorted(f.keys())[:8]}")
    except DatasetError:
        raise
    except Exception as e:  # damaged chunks, unreadable attributes, ...
        raise DatasetError(f"{file} is corrupt or truncated ({_first_line(e)})") from None
    if episodes is None:  # D4RL: no metadata, spaces inferred
        try:
            return Demonstrations(**found, observation_space=infer_space(found["observations"]),
                                  action_space=infer_space(found["actions"]))
        except DatasetError as e:
            raise DatasetError(f"{file}: {e}") from None
    if "total_steps" in meta and int(meta["total_steps"]) != sum(len(ep["rewards"]) for ep in episodes):
        raise DatasetError(f"{meta_path} says {meta['total_steps']} steps but {file} holds "
                           f"{sum(len(ep['rewards']) for ep in episodes)}")

    ours = meta.get("deeprl") if isinstance(meta.get("deeprl"), dict) else {}
    env_id = ours.get("env_id")
    if env_id is None and isinstance(meta.get("env_spec"), str):
        try:
            env_id = json.loads(meta["env_spec"]).get("id")
        except (ValueError, AttributeError):
            env_id = None
    if "metadata" in ours:
        metadata = dict(ours["metadata"])
    else:  # a dataset written by Minari: keep its descriptive keys
        metadata = {k: meta[k] for k in ("dataset_id", *MINARI_INFO_KEYS, "minari_version") if k in meta}
    obs_space = found.get("observation_space")
    act_space = found.get("action_space")
    if obs_space is None:
        obs_space = infer_space(episodes[0]["observations"])
    if act_space is None:
        act_space = infer_space(episodes[0]["actions"])
    try:
        return Demonstrations.from_episodes(episodes, obs_space, act_space, env_id, metadata)
    except DatasetError as e:
        raise DatasetError(f"{file}: {e}") from None
