"""Checkpoints: exact round trips, atomic writes, safe loading, and Agent save/load."""
from __future__ import annotations

import builtins
import os
import pickle

import numpy as np
import pytest
import torch

from deeprl.algos.pg.ppo import PPO
from deeprl.core import checkpoint
from deeprl.core.errors import CheckpointError


def assert_same(a, b, path="root"):
    """Recursive exact equality: same container types, dtypes, shapes and values."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert torch.equal(a, b), path
    elif isinstance(a, float) and a != a:
        assert b != b, path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def payload_without_header(d):
    return {k: v for k, v in d.items() if k not in ("format", "version")}


# -- round trips ---------------------------------------------------------------------------
def test_round_trip_nested_containers(tmp_path):
    rng = np.random.default_rng(3)
    payload = {
        "arrays": {
            "f32": rng.standard_normal((3, 4)).astype(np.float32),
            "f64": rng.standard_normal(5),
            "f16": np.arange(4, dtype=np.float16),
            "i64": np.arange(-3, 3, dtype=np.int64),
            "u8": np.arange(10, dtype=np.uint8).reshape(2, 5),
            "u16": np.array([0, 65535], dtype=np.uint16),
            "bool": np.array([True, False, True]),
            "empty": np.zeros((0, 3), np.float32),
            "noncontig": np.arange(12.0).reshape(3, 4)[:, ::2],
            "transposed": np.arange(6, dtype=np.int32).reshape(2, 3).T,
        },
        "tensors": {"w": torch.randn(3, 2), "idx": torch.arange(4), "half": torch.ones(2, dtype=torch.bfloat16)},
        "ints": {"big": 2**100 + 7, "neg_big": -(2**80), "u64max": 2**64 - 1, "zero": 0},
        "floats": [0.1, -1e300, float("inf"), float("nan")],
        "tuple": (1, (2.5, "x"), [np.arange(3)]),
        "list_of_dicts": [{"a": None, "b": True}, {"c": "text", "d": b"bytes"}],
        "rng": np.random.default_rng(7).bit_generator.state,  # dict of big uint64 ints
        3: "int key",
        "np_scalars": {"i": np.int64(5), "f": np.float32(1.5), "b": np.bool_(True)},
    }
    p = tmp_path / "c.pt"
    checkpoint.save(payload, p)
    loaded = checkpoint.load(p)
    raw = torch.load(p, weights_only=True)
    assert raw["format"] == checkpoint.FORMAT and raw["version"] == checkpoint.VERSION
    assert "format" not in loaded and "version" not in loaded  # header kept apart from the payload
    expected = dict(payload)
    expected["np_scalars"] = {"i": 5, "f": 1.5, "b": True}  # NumPy scalars come back as Python scalars
    expected["arrays"] = dict(payload["arrays"])
    assert_same(payload_without_header(loaded), expected)
    # the loaded RNG state restores the exact stream
    g = np.random.default_rng(0)
    g.bit_generator.state = loaded["rng"]
    assert np.array_equal(g.random(5), np.random.default_rng(7).random(5))


def test_zero_dim_array_keeps_its_shape(tmp_path):
    payload = {"scalar0d": np.array(2.5), "int0d": np.array(3, dtype=np.int64)}
    checkpoint.save(payload, tmp_path / "c.pt")
    loaded = checkpoint.load(tmp_path / "c.pt")
    assert loaded["scalar0d"].shape == () and loaded["int0d"].shape == ()
    assert loaded["scalar0d"] == 2.5 and loaded["int0d"] == 3


def test_loaded_arrays_are_writable_copies(tmp_path):
    a = np.arange(4.0)
    checkpoint.save({"a": a}, tmp_path / "c.pt")
    b = checkpoint.load(tmp_path / "c.pt")["a"]
    b[0] = 42.0
    assert a[0] == 0.0


def test_save_creates_parent_dirs_and_overwrites(tmp_path):
    p = tmp_path / "deep" / "er" / "c.pt"
    checkpoint.save({"v": 1}, p)
    checkpoint.save({"v": 2}, p)
    assert checkpoint.load(p)["v"] == 2
    assert os.listdir(p.parent) == ["c.pt"]


# -- atomicity -----------------------------------------------------------------------------
@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_crash_mid_write_keeps_previous_file(tmp_path, monkeypatch, exc):
    p = tmp_path / "latest.pt"
    checkpoint.save({"v": 1, "x": np.arange(1000.0)}, p)
    before = p.read_bytes()
    real_save = torch.save

    def crashing_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04partial-bytes" * 10)
        raise exc

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(type(exc)):
        checkpoint.save({"v": 2, "x": np.zeros(1000)}, p)
    monkeypatch.setattr(torch, "save", real_save)
    assert p.read_bytes() == before
    assert checkpoint.load(p)["v"] == 1
    assert sorted(os.listdir(tmp_path)) == ["latest.pt"], "temporary files left behind"


def test_crash_at_rename_keeps_previous_file(tmp_path, monkeypatch):
    p = tmp_path / "latest.pt"
    checkpoint.save({"v": 1}, p)
    before = p.read_bytes()

    def failing_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        checkpoint.save({"v": 2}, p)
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["latest.pt"]


def test_first_write_crash_leaves_nothing(tmp_path, monkeypatch):
    def crashing_save(obj, f, *a, **k):
        f.write(b"partial")
        raise RuntimeError("boom")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(RuntimeError):
        checkpoint.save({"v": 1}, tmp_path / "c.pt")
    assert os.listdir(tmp_path) == []


# -- corrupt and foreign files ---------------------------------------------------------------
@pytest.fixture
def good_file(tmp_path):
    p = tmp_path / "good.pt"
    checkpoint.save({"w": torch.randn(64, 64), "a": np.arange(100.0), "n": 3}, p)
    return p


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_file_is_checkpoint_error(tmp_path, good_file, keep):
    data = good_file.read_bytes()
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(bad)
    assert str(bad) in str(e.value)


def test_random_bytes_is_checkpoint_error(tmp_path):
    bad = tmp_path / "rand.pt"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError):
        checkpoint.load(bad)


def test_text_file_is_checkpoint_error(tmp_path):
    bad = tmp_path / "text.pt"
    bad.write_text("this is not a checkpoint\n")
    with pytest.raises(CheckpointError):
        checkpoint.load(bad)


def test_missing_file_and_directory_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError):
        checkpoint.load(tmp_path)


@pytest.mark.parametrize("obj", [{"a": torch.ones(2)}, torch.ones(3), [1, 2, 3], {"format": "other", "version": 1}],
                         ids=["dict", "tensor", "list", "other-format"])
def test_non_deeprl_torch_file_is_checkpoint_error(tmp_path, obj):
    p = tmp_path / "foreign.pt"
    torch.save(obj, p)
    with pytest.raises(CheckpointError, match="not a deeprl checkpoint"):
        checkpoint.load(p)


def test_wrong_version_is_checkpoint_error(tmp_path):
    p = tmp_path / "v99.pt"
    torch.save({"format": checkpoint.FORMAT, "version": 99}, p)
    with pytest.raises(CheckpointError, match="version 99"):
        checkpoint.load(p)


class _Evil:
    """Unpickling this runs code that creates ``marker``."""

    def __init__(self, marker, how):
        self.marker, self.how = str(marker), how

    def __reduce__(self):
        if self.how == "system":
            return (os.system, (f"touch '{self.marker}'",))
        return (builtins.exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("how", ["system", "exec"])
@pytest.mark.parametrize("writer", ["torch_save", "raw_pickle", "inside_valid_header"])
def test_pickled_code_is_refused_and_never_runs(tmp_path, monkeypatch, how, writer):
    marker = tmp_path / "pwned"
    evil = _Evil(marker, how)
    # the payload is live: plain unpickling would run it
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Evil(probe, how)))
    assert probe.exists()

    p = tmp_path / "evil.pt"
    if writer == "torch_save":
        torch.save(evil, p)
    elif writer == "raw_pickle":
        p.write_bytes(pickle.dumps({"format": checkpoint.FORMAT, "version": 1, "x": evil}, protocol=2))
    else:
        torch.save({"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "modules": {"x": evil}}, p)
    # an environment asking torch to drop weights_only must not weaken the explicit request
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(CheckpointError):
        checkpoint.load(p)
    assert not marker.exists(), "loading a checkpoint executed pickled code"


def test_custom_class_instance_is_refused(tmp_path):
    p = tmp_path / "obj.pt"
    torch.save({"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "obj": _Plain()}, p)
    with pytest.raises(CheckpointError, match="corrupt or unsafe"):
        checkpoint.load(p)


class _Plain:
    def __init__(self):
        self.x = 1


# -- agents ----------------------------------------------------------------------------------
def small_ppo(env="CartPole-v1", **kw):
    opts = dict(num_envs=2, n_steps=32, batch_size=32, n_epochs=2, total_steps=256, eval_episodes=0,
                checkpoint_every=0, torch_threads=1)
    opts.update(kw)
    return PPO(env, seed=1, preset="none", **opts)


def obs_batch(agent, n=64, seed=0):
    space = agent.obs_space
    rng = np.random.default_rng(seed)
    low = np.where(np.isfinite(space.low), space.low, -3.0)
    high = np.where(np.isfinite(space.high), space.high, 3.0)
    return rng.uniform(low, high, (n,) + space.shape).astype(np.float32)


def module_states(agent):
    return {k: m.state_dict() for k, m in agent.modules().items()}


@pytest.fixture(scope="module", params=[("CartPole-v1", {}),
                                        ("Pendulum-v1", {"normalize_obs": True, "normalize_reward": True})],
                ids=["cartpole", "pendulum-normalized"])
def trained(request, tmp_path_factory):
    env, kw = request.param
    agent = small_ppo(env, **kw)
    agent.learn()
    path = tmp_path_factory.mktemp("agent") / "agent.pt"
    agent.save(path)
    return agent, path


def test_agent_round_trip_predictions_parameters_optimizer(trained):
    agent, path = trained
    loaded = PPO.load(path)
    obs = obs_batch(agent)
    np.testing.assert_array_equal(agent.predict(obs), loaded.predict(obs))
    np.testing.assert_array_equal(agent.predict(obs[0]), loaded.predict(obs[0]))
    # stochastic actions agree under the same torch seed
    torch.manual_seed(11)
    a1 = agent.predict(obs, deterministic=False)
    torch.manual_seed(11)
    a2 = loaded.predict(obs, deterministic=False)
    np.testing.assert_array_equal(a1, a2)
    # parameters, buffers and optimizer state
    sa, sb = module_states(agent), module_states(loaded)
    assert_same(sa["actor"], sb["actor"])
    assert_same(sa["critic"], sb["critic"])
    opt_a, opt_b = sa["optimizer"], sb["optimizer"]
    assert len(opt_a["state"]) > 0, "optimizer never stepped: the test would be vacuous"
    assert_same(opt_a, opt_b)
    assert loaded.train_state == agent.train_state
    assert loaded.run == agent.run and loaded.cfg == agent.cfg
    assert loaded.kl_coef == agent.kl_coef
    if agent.obs_normalizer is not None:
        assert_same(agent.obs_normalizer.state_dict(), loaded.obs_normalizer.state_dict())


def test_loaded_agent_differs_from_fresh_agent(trained):
    """Guard: a freshly built agent predicts differently, so the round-trip test can fail."""
    agent, _ = trained
    fresh = small_ppo(agent.run.env_id, normalize_obs=agent.run.normalize_obs,
                      normalize_reward=agent.run.normalize_reward)
    sa, sf = module_states(agent), module_states(fresh)
    assert any(not torch.equal(sa["actor"][k], sf["actor"][k]) for k in sa["actor"])


def test_agent_save_is_a_valid_checkpoint_with_no_temp_files(trained):
    _, path = trained
    assert sorted(os.listdir(path.parent)) == ["agent.pt"]
    d = checkpoint.load(path)
    assert d["algo"] == "ppo" and d["run_config"]["env_id"] in ("CartPole-v1", "Pendulum-v1")


def test_load_with_run_overrides(trained):
    agent, path = trained
    loaded = PPO.load(path, eval_episodes=3, total_steps=512)
    assert loaded.run.eval_episodes == 3 and loaded.run.total_steps == 512
    with pytest.raises(CheckpointError, match="eval_episodes"):
        PPO.load(path, eval_episodes=-1)


def _resave(path, tmp_path, edit):
    d = checkpoint.load(path)
    edit(d)
    out = tmp_path / "edited.pt"
    checkpoint.save(d, out)
    return out


def test_load_of_other_algorithm_is_error(trained, tmp_path):
    _, path = trained
    other = _resave(path, tmp_path, lambda d: d.__setitem__("algo", "a2c"))
    with pytest.raises(CheckpointError) as e:
        PPO.load(other)
    assert "'a2c'" in str(e.value) and "'ppo'" in str(e.value)


def test_other_registered_algorithm_refuses_ppo_checkpoint(trained):
    from deeprl.algos import ALGORITHMS

    _, path = trained
    others = [cls for name, cls in ALGORITHMS.items() if name != "ppo"]
    if not others:
        pytest.skip("only ppo is registered")
    for cls in others:
        with pytest.raises(CheckpointError, match="'ppo'"):
            cls.load(path)


@pytest.mark.parametrize("edit,match", [
    (lambda d: d["config"].__setitem__("hidden_sizes", [8]), "does not match"),
    (lambda d: d.pop("modules"), "modules"),
    (lambda d: d["config"].__setitem__("gamma", 5.0), "gamma"),
    (lambda d: d["config"].__setitem__("no_such_field", 1), "no_such_field"),
    (lambda d: d["spaces"].pop("act"), "act"),
], ids=["shape-mismatch", "missing-modules", "invalid-config", "unknown-config-key", "missing-space"])
def test_load_of_inconsistent_checkpoint_is_error(trained, tmp_path, edit, match):
    _, path = trained
    bad = _resave(path, tmp_path, edit)
    with pytest.raises(CheckpointError, match=match):
        PPO.load(bad)


def test_load_of_corrupt_agent_file_is_error(trained, tmp_path):
    _, path = trained
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError):
        PPO.load(bad)
