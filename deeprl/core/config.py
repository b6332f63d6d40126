"""Typed configuration: dataclasses with a one-line help per field, YAML presets and
``key=value`` overrides, validated before anything is written.

Resolution order (later wins): dataclass defaults < preset YAML < explicit arguments
(``--seed``, ``--steps``) < ``key=value`` overrides.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from deeprl.core.errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"


def param(default, help: str, *, choices=None, low=None, high=None, low_open=False, aliases=()):
    """A config field: its default, a one-line help, and its valid range or choices."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "low_open": low_open,
            "aliases": tuple(aliases)}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class RunConfig:
    """Settings of a training run shared by every algorithm."""

    env_id: str = param("CartPole-v1", "Gymnasium environment id")
    seed: int = param(0, "random seed for networks, sampling and environments", low=0)
    total_steps: int = param(100_000, "environment steps to train for (summed over parallel envs)", low=1)
    num_envs: int = param(1, "parallel environments (gymnasium.vector)", low=1)
    vectorization: str = param("sync", "vector env implementation", choices=("sync", "async"))
    dict_obs: str = param("flatten", "Dict observations: flatten to a vector or encode per key",
                          choices=("flatten", "encode"))
    obs_history: int = param(1, "observations the agent sees: the last N stacked (N > 1 for non-Markovian "
                             "tasks; the first one of an episode repeats)", low=1)
    normalize_obs: bool = param(False, "standardise observations with running mean/std")
    normalize_reward: bool = param(False, "scale rewards by the running std of the discounted return")
    clip_obs: float = param(10.0, "clip normalised observations to [-clip_obs, clip_obs]", low=0, low_open=True)
    eval_every: int = param(10_000, "evaluate every N env steps (0: only at the end)", low=0)
    eval_episodes: int = param(10, "deterministic evaluation episodes (0: no evaluation)", low=0)
    checkpoint_every: int = param(20_000, "write a checkpoint every N env steps (0: only at the end)", low=0)
    log_every: int = param(0, "write a metrics row at most every N env steps (0: the algorithm's "
                           "default: every iteration on-policy, every 1000 steps off-policy)", low=0)
    keep_checkpoints: int = param(3, "how many step-numbered checkpoints to keep", low=1)
    torch_threads: int | None = param(None, "torch intra-op threads (None: the algorithm's default, 1 for "
                                      "on-policy and 2 for replay-based ones, at most the core count; "
                                      "0: torch's default)", low=0)
    device: str = param("cpu", "torch device", choices=("cpu", "cuda", "mps"))
    matmul_precision: str = param("float32", "precision of the matrix multiplies in replay-based updates and "
                                  "dynamics-model fitting: "
                                  "float32, or bfloat16 autocast (fp32 weights and optimiser; ~3x faster "
                                  "matmuls on CPUs with AVX512-BF16/AMX, at ~3 significant digits)",
                                  choices=("float32", "bfloat16"))


def fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _type_of(cls, name):
    hints = typing.get_type_hints(cls)
    return hints[name]


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _coerce(value, tp, key):
    """Convert a YAML-parsed value to the field's type, or raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
            value = [yaml.safe_load(v) for v in value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return tuple(_coerce(v, typing.get_args(tp)[0], key) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected int, got {value!r}")
        if isinstance(value, int):
            return value
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected int, got {value!r}") from None
        if f != f or f in (float("inf"), float("-inf")) or not f.is_integer():
            raise ConfigError(f"{key}: expected int, got {value!r}")
        return int(f)
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected float, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected float, got {value!r}") from None
        if f != f:
            raise ConfigError(f"{key}: expected a number, got NaN")
        return f
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected str, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {tp}")


def _check_range(value, field: dataclasses.Field, key):
    m = field.metadata
    if value is None:
        return
    vals = value if isinstance(value, tuple) else (value,)
    for v in vals:
        if m.get("choices") is not None and v not in m["choices"]:
            raise ConfigError(f"{key}: {v!r} is not one of {', '.join(map(str, m['choices']))}")
        lo, hi = m.get("low"), m.get("high")
        if lo is not None and (v < lo or (m.get("low_open") and v == lo)):
            op = ">" if m.get("low_open") else ">="
            raise ConfigError(f"{key}: must be {op} {lo}, got {v}")
        if hi is not None and v > hi:
            raise ConfigError(f"{key}: must be <= {hi}, got {v}")


def canonical_key(classes, key: str) -> tuple[type, str]:
    """Find which dataclass owns ``key`` (or one of its aliases)."""
    for cls in classes:
        for name, f in fields(cls).items():
            if key == name or key in f.metadata.get("aliases", ()):
                return cls, name
    valid = sorted(n for cls in classes for n in fields(cls))
    close = difflib.get_close_matches(key, valid, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ConfigError(f"unknown key {key!r}{hint}; valid keys: {', '.join(valid)}")


def build(cls, values: dict[str, Any]):
    """Instantiate ``cls`` from already canonical ``values``, coercing and range-checking."""
    out = {}
    fs = fields(cls)
    for name, value in values.items():
        tp = _type_of(cls, name)
        v = _coerce(value, tp, name)
        _check_range(v, fs[name], name)
        out[name] = v
    return cls(**out)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["lr=1e-3", "hidden_sizes=[64,64]"]`` -> ``{"lr": 0.001, ...}`` (YAML values)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def preset_names(algo: str) -> list[str]:
    d = PRESET_DIR / algo
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def preset_file_name(env_id: str) -> str:
    return env_id.replace("/", "_")


def load_preset(algo: str, env_id: str, preset: str | None, _depth: int = 0) -> tuple[dict, str | None]:
    """Return (values, source). ``preset``: None/'auto' uses ``configs/ALGO/ENV.yaml`` if it
    exists; 'none' uses defaults; a name picks ``configs/ALGO/NAME.yaml``; a path a file. A
    preset with ``extends: auto`` (or another preset's name) is layered over that preset."""
    if preset is not None and preset.lower() == "none":
        return {}, None
    if preset is None or preset == "auto":
        path = PRESET_DIR / algo / f"{preset_file_name(env_id)}.yaml"
        if not path.exists():
            return {}, None
    elif preset.endswith((".yaml", ".yml")):
        path = Path(preset)
        if not path.is_file():
            raise ConfigError(f"preset file {preset!r} does not exist")
    else:
        path = PRESET_DIR / algo / f"{preset}.yaml"
        if not path.exists():
            names = preset_names(algo)
            raise ConfigError(f"unknown preset {preset!r} for {algo}; valid presets: "
                              f"{', '.join(names) or '(none)'} or a path to a .yaml file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"preset {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"preset {path} must be a mapping of key: value")
    base = values.pop("extends", None)  # e.g. `extends: auto`: layer on top of the env's preset
    if base is not None:
        if _depth >= 4 or str(base).lower() == "none":
            raise ConfigError(f"preset {path}: invalid extends {base!r} (chains are limited to 4 presets)")
        base_values, base_source = load_preset(algo, env_id, str(base), _depth + 1)
        return {**base_values, **values}, f"{path} (extends {base_source})" if base_source else str(path)
    return values, str(path)


def resolve(algo: str, algo_cls, env_id: str, *, seed=None, total_steps=None, preset=None,
            overrides: dict | None = None) -> tuple[RunConfig, Any, str | None]:
    """Merge defaults, preset and overrides into a validated (RunConfig, AlgoConfig)."""
    classes = (RunConfig, algo_cls)
    preset_values, source = load_preset(algo, env_id, preset)
    merged: dict[type, dict] = {RunConfig: {"env_id": env_id}, algo_cls: {}}
    layers = [preset_values, {"seed": seed, "total_steps": total_steps}, overrides or {}]
    for layer in layers:
        for key, value in layer.items():
            if value is None and key in ("seed", "total_steps"):
                continue
            if key == "env_id":
                if layer is layers[2] and value != env_id:
                    raise ConfigError("env_id cannot be overridden with key=value; use --env "
                                      "(or the env argument) so the matching preset is chosen")
                continue
            cls, name = canonical_key(classes, key)
            merged[cls][name] = value
    return build(RunConfig, merged[RunConfig]), build(algo_cls, merged[algo_cls]), source


def to_dict(cfg) -> dict:
    d = dataclasses.asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def describe(cls) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) for every field: used by ``deeprl list`` and docs."""
    out = []
    for f in dataclasses.fields(cls):
        help_ = f.metadata.get("help", "")
        if f.metadata.get("aliases"):
            help_ += f" (alias: {', '.join(f.metadata['aliases'])})"
        if f.metadata.get("choices"):
            help_ += f" [{'|'.join(map(str, f.metadata['choices']))}]"
        out.append((f.name, _type_name(_type_of(cls, f.name)), f.default, help_))
    return out
