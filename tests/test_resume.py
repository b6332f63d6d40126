"""Determinism and resume: same seed -> same run; interrupted + resumed == uninterrupted."""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from deeprl import cli
from deeprl.algos.offpolicy.sac import SAC
from deeprl.algos.pg.ppo import PPO
from deeprl.core import checkpoint
from deeprl.runners.train import train

BASE = dict(num_envs=2, n_steps=64, total_steps=1024, batch_size=64, n_epochs=2, eval_every=512,
            eval_episodes=2, checkpoint_every=256, torch_threads=1)
# For resume: the checkpoint at 384 is followed by logged rows (512 with an evaluation, 640)
# that the interrupted run wrote and the resumed run must replace.
RESUME = dict(BASE, checkpoint_every=384)
INTERRUPT_AT_UPDATE = 6  # the update after env step 768 raises KeyboardInterrupt
RESUME_CASES = {
    "cartpole": ("CartPole-v1", {}),
    "pendulum": ("Pendulum-v1", {}),
    "pendulum-normalized": ("Pendulum-v1", {"normalize_obs": True, "normalize_reward": True}),
    "mujoco": ("InvertedPendulum-v5", {}),  # physics state restored through qpos/qvel/act/time
}
TIME_ONLY = {"time/sps", "time/wall_s"}  # wall-clock columns, the only ones allowed to differ
SUMMARY_TIME = {"wall_time_s", "sps"}


def make(env, seed=0, **kw):
    return PPO(env, seed=seed, preset="none", **{**BASE, **kw})


def read_metrics(run_dir: Path):
    with open(run_dir / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _num(s):
    return math.nan if s in ("", None) else float(s)


def assert_metrics_equal(dir_a: Path, dir_b: Path):
    ha, ra = read_metrics(dir_a)
    hb, rb = read_metrics(dir_b)
    assert ha == hb, "metrics.csv columns differ"
    assert len(ra) == len(rb), f"metrics.csv has {len(ra)} vs {len(rb)} rows"
    compared = [k for k in ha if k not in TIME_ONLY]
    assert any(k.startswith("loss/") for k in compared) and any(k.startswith("eval/") for k in compared)
    for i, (x, y) in enumerate(zip(ra, rb)):
        for k in compared:
            a, b = _num(x[k]), _num(y[k])
            same = (a == b) or (math.isnan(a) and math.isnan(b))
            assert same, f"row {i} (env step {x['time/env_steps']}): {k} {x[k]!r} != {y[k]!r}"
    # every training episode, once, in order: (env step at its end, return, length)
    ea, eb = ((d / "episodes.csv").read_text().splitlines() for d in (dir_a, dir_b))
    assert ea[0] == "env_step,return,length" and len(ea) > 2
    assert ea == eb, "episodes.csv differs"
    steps = [int(r.split(",")[0]) for r in ea[1:]]
    assert steps == sorted(steps) and steps[-1] <= int(ra[-1]["time/env_steps"])


def named_params(agent):
    return {f"{m}.{k}": v for m in ("actor", "critic") for k, v in getattr(agent, m).state_dict().items()}


def assert_params_equal(a, b):
    pa, pb = named_params(a), named_params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), f"parameter {k} differs"


def assert_optimizer_equal(a, b):
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["state"].keys() == sb["state"].keys() and len(sa["state"]) > 0
    for i in sa["state"]:
        for k, v in sa["state"][i].items():
            w = sb["state"][i][k]
            assert torch.equal(v, w) if isinstance(v, torch.Tensor) else v == w, f"optimizer state {i}.{k}"


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def assert_summary_equal(dir_a: Path, dir_b: Path):
    sa, sb = summary(dir_a), summary(dir_b)
    assert sa["eval_return_mean"] is not None
    assert sa["eval_return_mean"] == sb["eval_return_mean"]
    for k in sa.keys() - SUMMARY_TIME:
        assert sa[k] == sb[k], f"summary.json {k}: {sa[k]!r} != {sb[k]!r}"


def interrupt_after(agent, n_calls: int, method: str = "update"):
    """Make the agent's ``n_calls``-th call of ``method`` raise KeyboardInterrupt (like Ctrl-C).
    (``update`` runs once per iteration in the collecting loop; the replay loop calls ``observe``
    once per iteration and ``update`` once per gradient step.)"""
    orig, calls = getattr(agent, method), [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n_calls:
            raise KeyboardInterrupt
        return orig(*args, **kwargs)

    setattr(agent, method, wrapped)
    return calls


def latest_step(run_dir: Path) -> int:
    return checkpoint.load(run_dir / "checkpoints" / "latest.pt")["train"]["env_steps"]


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(args, cwd, timeout=120):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "deeprl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


# -- (a) determinism -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("determinism")
    agents = []
    for name in ("a", "b"):
        agent = make("CartPole-v1")
        train(agent, run_dir=root / name)
        agents.append(agent)
    return root, agents


def test_same_seed_same_metrics(two_runs):
    root, _ = two_runs
    assert_metrics_equal(root / "a", root / "b")
    assert_summary_equal(root / "a", root / "b")


def test_same_seed_same_parameters(two_runs):
    _, (a, b) = two_runs
    assert_params_equal(a, b)
    assert_optimizer_equal(a, b)


def test_different_seed_differs(two_runs, tmp_path):
    """Guard: the comparisons above would notice a different run."""
    _, (a, _) = two_runs
    c = make("CartPole-v1", seed=1)
    train(c, run_dir=tmp_path / "c")
    pa, pc = named_params(a), named_params(c)
    assert any(not torch.equal(pa[k], pc[k]) for k in pa)
    with pytest.raises(AssertionError):
        assert_metrics_equal(two_runs[0] / "a", tmp_path / "c")


def test_run_without_run_dir_matches_run_with_one(two_runs):
    _, (a, _) = two_runs
    c = make("CartPole-v1")
    c.learn()
    assert_params_equal(a, c)


# -- (b) resume --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs, one per resume case (computed lazily, shared by the tests)."""
    cache = {}

    def get(case):
        if case not in cache:
            env, kw = RESUME_CASES[case]
            run_dir = tmp_path_factory.mktemp(f"ref-{case}")
            agent = make(env, **{**RESUME, **kw})
            train(agent, run_dir=run_dir)
            cache[case] = (agent, run_dir)
        return cache[case]

    return get


def interrupted_run(case, run_dir: Path):
    env, kw = RESUME_CASES[case]
    agent = make(env, **{**RESUME, **kw})
    calls = interrupt_after(agent, INTERRUPT_AT_UPDATE)
    with pytest.raises(KeyboardInterrupt):
        train(agent, run_dir=run_dir)
    assert calls[0] == INTERRUPT_AT_UPDATE
    # the interruption happened after a checkpoint and after rows the resumed run must replace
    assert latest_step(run_dir) == 384
    _, rows = read_metrics(run_dir)
    assert max(int(r["time/env_steps"]) for r in rows) == 640
    return agent


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_interrupted_then_resumed_equals_uninterrupted(case, reference, tmp_path):
    ref_agent, ref_dir = reference(case)
    run_dir = tmp_path / "run"
    interrupted_run(case, run_dir)
    resumed = PPO.load(run_dir / "checkpoints" / "latest.pt")
    assert resumed.train_state["env_steps"] == 384 and resumed.train_state["iterations"] == 3
    result = train(resumed, run_dir=run_dir)
    assert result["env_steps"] == 1024
    assert_params_equal(ref_agent, resumed)
    assert_optimizer_equal(ref_agent, resumed)
    assert_summary_equal(ref_dir, run_dir)
    assert_metrics_equal(ref_dir, run_dir)
    if ref_agent.reward_scaler is not None:
        ra, rb = ref_agent.reward_scaler.state_dict(), resumed.reward_scaler.state_dict()
        for k in ("mean", "var", "count"):
            assert float(ra["rms"][k]) == float(rb["rms"][k]), f"reward scaler {k}"
        assert (ra["ret"] == rb["ret"]).all()
    if ref_agent.obs_normalizer is not None:
        oa, ob = ref_agent.obs_normalizer.state_dict(), resumed.obs_normalizer.state_dict()
        assert (oa["mean"] == ob["mean"]).all() and (oa["var"] == ob["var"]).all() and oa["count"] == ob["count"]


def test_resume_from_fresh_agent_without_env_state_differs(reference, tmp_path):
    """Guard: resuming with parameters only (no collector/RNG state) gives a different run, so the
    equality above really depends on the restored training state."""
    ref_agent, _ = reference("pendulum")
    run_dir = tmp_path / "run"
    interrupted_run("pendulum", run_dir)
    d = checkpoint.load(run_dir / "checkpoints" / "latest.pt")
    d["collector"] = None  # drop the environments' state: episodes restart from resets
    resumed = PPO.from_state_dict(d)
    train(resumed, run_dir=run_dir)
    pa, pb = named_params(ref_agent), named_params(resumed)
    assert any(not torch.equal(pa[k], pb[k]) for k in pa)


def test_resumed_run_keeps_the_same_checkpoint_schedule(reference, tmp_path):
    _, ref_dir = reference("cartpole")
    run_dir = tmp_path / "run"
    interrupted_run("cartpole", run_dir)
    resumed = PPO.load(run_dir / "checkpoints" / "latest.pt")
    assert resumed.train_state["next_checkpoint"] > resumed.train_state["env_steps"]
    train(resumed, run_dir=run_dir)
    names = lambda d: sorted(p.name for p in (d / "checkpoints").glob("step_*.pt"))  # noqa: E731
    assert names(run_dir) == names(ref_dir)


def test_interrupt_via_cli_main_then_resume_in_subprocess(reference, tmp_path, monkeypatch, capsys):
    """`deeprl train` interrupted (exit 130, hint to --resume), then `deeprl train --resume` in a
    fresh process finishes the run exactly as an uninterrupted one."""
    ref_agent, ref_dir = reference("cartpole")
    run_dir = tmp_path / "run"
    orig, calls = PPO.update, [0]

    def update(self, batch, progress):
        calls[0] += 1
        if calls[0] == INTERRUPT_AT_UPDATE:
            raise KeyboardInterrupt
        return orig(self, batch, progress)

    monkeypatch.setattr(PPO, "update", update)
    overrides = [f"{k}={v}" for k, v in RESUME.items() if k != "total_steps"]
    rc = cli.main(["train", "ppo", *overrides, "--env", "CartPole-v1", "--seed", "0", "--steps", "1024",
                   "--preset", "none", "--run-dir", str(run_dir), "--no-progress"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert rc == 130
    assert f"--resume {run_dir}" in err
    assert latest_step(run_dir) == 384

    p = run_cli(["train", "--resume", str(run_dir), "--no-progress"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "resuming from env step 384" in p.stderr
    final = PPO.load(run_dir / "checkpoints" / "latest.pt")
    assert final.train_state["env_steps"] == 1024
    assert_params_equal(ref_agent, final)
    assert_summary_equal(ref_dir, run_dir)
    assert_metrics_equal(ref_dir, run_dir)
    assert (run_dir / "learning_curve.png").is_file()


def test_cli_run_matches_api_run_and_resume_of_finished_run_is_a_no_op(reference, tmp_path):
    ref_agent, ref_dir = reference("cartpole")
    run_dir = tmp_path / "cli-run"
    overrides = [f"{k}={v}" for k, v in RESUME.items()]
    p = run_cli(["train", "ppo", *overrides, "--env", "CartPole-v1", "--run-dir", str(run_dir),
                 "--preset", "none", "--no-progress"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    final = PPO.load(run_dir / "checkpoints" / "latest.pt")
    assert_params_equal(ref_agent, final)  # the CLI and the Python API run the same experiment
    assert_summary_equal(ref_dir, run_dir)

    before = tree_hashes(run_dir)
    p = run_cli(["train", "--resume", str(run_dir)], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "already reached its budget of 1024 steps" in p.stderr
    assert tree_hashes(run_dir) == before, "resuming a finished run changed its files"


def test_resume_of_env_without_state_snapshot_restarts_episodes(tmp_path, capsys):
    """Box2D worlds cannot be snapshotted: resuming says so and continues from fresh resets."""
    from deeprl.envs.state import get_vec_state

    agent = make("LunarLander-v3", total_steps=256, eval_every=0, eval_episodes=0, checkpoint_every=128)
    train(agent, run_dir=tmp_path)
    assert get_vec_state(agent.collector.envs) is None
    resumed = PPO.load(tmp_path / "checkpoints" / "step_0000000128.pt", total_steps=384)
    summary = train(resumed, run_dir=tmp_path)
    assert "cannot snapshot its state" in capsys.readouterr().out
    assert summary["env_steps"] == 384


def test_python_api_refuses_to_overwrite_a_run(tmp_path):
    from deeprl.core.errors import ConfigError

    train(make("CartPole-v1", total_steps=128, eval_every=0, eval_episodes=0), run_dir=tmp_path)
    before = (tmp_path / "metrics.csv").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        train(make("CartPole-v1", total_steps=128, eval_every=0, eval_episodes=0), run_dir=tmp_path)
    assert (tmp_path / "metrics.csv").read_bytes() == before


def _same(x, y) -> bool:
    """Nested equality of state dicts (tensors compared exactly)."""
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return isinstance(y, (list, tuple)) and len(x) == len(y) and all(map(_same, x, y))
    return x == y


def test_extending_a_finished_run_equals_a_run_with_the_larger_budget(tmp_path):
    """``--resume RUN --steps N`` trains a finished off-policy run on (replay buffer, optimiser and
    a mid-episode env restored); SAC has no budget-dependent schedule, so the result equals a
    run given N steps from the start."""
    args = ["--env", "Pendulum-v1", "--preset", "none", "--no-progress", "learning_starts=200", "batch_size=32",
            "eval_episodes=0", "checkpoint_every=0", "torch_threads=1"]
    short, long = tmp_path / "short", tmp_path / "long"
    for run_dir, steps in ((short, 700), (long, 1000)):
        p = run_cli(["train", "sac", *args, "--steps", str(steps), "--run-dir", str(run_dir)], cwd=tmp_path)
        assert p.returncode == 0, p.stderr
    before = tree_hashes(short)
    p = run_cli(["train", "--resume", str(short), "--steps", "600"], cwd=tmp_path)
    assert p.returncode == 2 and "total_steps=600 is below the 700 env steps" in p.stderr
    assert tree_hashes(short) == before, "a refused extension changed the run"
    p = run_cli(["train", "--resume", str(short), "--steps", "1000"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    a, b = (SAC.load(d / "checkpoints" / "latest.pt") for d in (short, long))
    assert a.train_state["env_steps"] == b.train_state["env_steps"] == 1000
    for name, module in a.modules().items():
        assert _same(module.state_dict(), b.modules()[name].state_dict()), f"{name} differs"
    assert yaml.safe_load((short / "config.yaml").read_text())["run"]["total_steps"] == 1000
    assert summary(short)["train_return_mean"] == summary(long)["train_return_mean"]
