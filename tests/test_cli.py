"""`python -m deeprl` end to end: user errors exit 2 with one line and write nothing; train,
eval, plot, list and --seeds produce the documented files; non-finite values stop training."""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for nan_env under any pytest import mode
import nan_env  # noqa: E402

from deeprl import cli  # noqa: E402
from deeprl.algos.pg.ppo import PPO, PPOConfig  # noqa: E402
from deeprl.core.config import RunConfig  # noqa: E402
from deeprl.core.errors import NonFiniteError  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL = ["num_envs=2", "n_steps=64", "batch_size=64", "n_epochs=2", "eval_every=256", "eval_episodes=2",
         "checkpoint_every=256", "torch_threads=1"]
SUMMARY_KEYS = {"algo", "env", "seed", "env_steps", "wall_time_s", "sps", "eval_return_mean", "eval_return_std",
                "eval_episodes"}


def deeprl(*args, cwd, timeout=120):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "deeprl", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def error_line(p) -> str:
    """The stderr of a failed command: exactly one line, starting with 'deeprl: error:'."""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{p.stderr}"
    assert lines[0].startswith("deeprl: error: "), lines[0]
    assert "Traceback" not in p.stderr
    return lines[0]


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A small finished CLI run (never modified by the tests: copy it first)."""
    cwd = tmp_path_factory.mktemp("finished")
    p = deeprl("train", "ppo", *SMALL, "--env", "CartPole-v1", "--steps", 512, "--preset", "none",
               "--run-dir", "run", "--no-progress", cwd=cwd)
    assert p.returncode == 0, p.stderr
    return cwd / "run"


def copy_run(src: Path, dst_parent: Path) -> Path:
    dst = dst_parent / "copied-run"
    shutil.copytree(src, dst)
    return dst


# -- user errors -------------------------------------------------------------------------------
def test_unknown_algorithm(tmp_path):
    p = deeprl("train", "dqnn", "--env", "CartPole-v1", cwd=tmp_path)
    assert p.returncode == 2
    line = error_line(p)
    assert "'dqnn'" in line and "ppo" in line
    assert listing(tmp_path) == [], "an invalid command wrote files"


def test_unknown_env_suggests_close_ids(tmp_path):
    p = deeprl("train", "ppo", "--env", "CartPole-v9", "--run-dir", "r", cwd=tmp_path)
    assert p.returncode == 2
    line = error_line(p)
    assert "'CartPole-v9'" in line and "CartPole-v1" in line
    assert listing(tmp_path) == []


def test_unknown_key_names_it_and_creates_nothing(tmp_path):
    p = deeprl("train", "ppo", "n_step=16", "--env", "CartPole-v1", "--run-dir", "r", cwd=tmp_path)
    assert p.returncode == 2
    line = error_line(p)
    assert "'n_step'" in line and "n_steps" in line
    assert listing(tmp_path) == []
    p = deeprl("train", "ppo", "learning_rat=0.1", "--env", "CartPole-v1", cwd=tmp_path)  # default run dir
    assert p.returncode == 2 and "'learning_rat'" in error_line(p)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("override,key", [("n_steps=abc", "n_steps"), ("gamma=1.5", "gamma"),
                                          ("lr_schedule=cubic", "lr_schedule")])
def test_bad_value(tmp_path, override, key):
    p = deeprl("train", "ppo", override, "--env", "CartPole-v1", "--run-dir", "r", cwd=tmp_path)
    assert p.returncode == 2
    assert key in error_line(p)
    assert listing(tmp_path) == []


def test_resume_of_a_directory_that_is_not_a_run(tmp_path):
    d = tmp_path / "notarun"
    d.mkdir()
    (d / "notes.txt").write_text("hello")
    before = tree_hashes(d)
    p = deeprl("train", "--resume", d, cwd=tmp_path)
    assert p.returncode == 2
    assert "not a run directory" in error_line(p)
    assert tree_hashes(d) == before and listing(d) == ["notes.txt"]
    p = deeprl("train", "--resume", tmp_path / "missing", cwd=tmp_path)
    assert p.returncode == 2
    error_line(p)
    assert not (tmp_path / "missing").exists()


def test_resume_with_corrupt_checkpoint_changes_nothing(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    latest = run / "checkpoints" / "latest.pt"
    latest.write_bytes(b"\x00garbage" * 100)
    before = tree_hashes(run)
    p = deeprl("train", "--resume", run, cwd=tmp_path)
    assert p.returncode == 2
    assert "latest.pt" in error_line(p)
    assert tree_hashes(run) == before, "a failed resume modified the run directory"


def test_run_dir_that_exists_and_is_not_empty(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    before = tree_hashes(run)
    p = deeprl("train", "ppo", *SMALL, "--env", "CartPole-v1", "--steps", 256, "--run-dir", run, cwd=tmp_path)
    assert p.returncode == 2
    line = error_line(p)
    assert "already exists" in line and "--resume" in line
    assert tree_hashes(run) == before


def test_eval_of_a_directory_that_is_not_a_run(tmp_path):
    p = deeprl("eval", tmp_path, cwd=tmp_path)
    assert p.returncode == 2
    assert "not a run directory" in error_line(p)


# -- list ----------------------------------------------------------------------------------------
def test_list_shows_algorithms_and_presets(tmp_path):
    p = deeprl("list", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "algorithms:" in out and "presets" in out and "environments" in out
    algo_lines = [ln for ln in out[: out.index("presets")].splitlines() if ln.strip().startswith("ppo ")]
    assert algo_lines and "Proximal Policy Optimization" in algo_lines[0]
    preset_lines = [ln for ln in out[out.index("presets"):].splitlines() if ln.strip().startswith("ppo")]
    assert preset_lines and "CartPole-v1" in preset_lines[0]
    assert listing(tmp_path) == []


def test_list_algorithm_shows_every_field_with_help(tmp_path):
    p = deeprl("list", "ppo", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    for cls in (RunConfig, PPOConfig):
        for f in dataclasses.fields(cls):
            row = [ln for ln in lines if ln.split() and ln.split()[0] == f.name]
            assert row, f"{f.name} missing from `deeprl list ppo`"
            assert f.metadata["help"] in row[0]
    assert "presets: CartPole-v1" in p.stdout


def test_list_unknown_topic(tmp_path):
    p = deeprl("list", "nonsense", cwd=tmp_path)
    assert p.returncode == 2
    assert "'nonsense'" in error_line(p)


# -- a finished run: files, eval, plot ---------------------------------------------------------------
def test_train_writes_the_documented_files(finished_run):
    for name in ("config.yaml", "metrics.csv", "summary.json", "checkpoints/latest.pt", "learning_curve.png"):
        assert (finished_run / name).is_file(), name
    s = json.loads((finished_run / "summary.json").read_text())
    assert SUMMARY_KEYS <= s.keys()
    assert s["env_steps"] == 512 and s["eval_episodes"] == 2 and s["algo"] == "ppo"
    assert any(p.name.startswith("events.out.tfevents") for p in (finished_run / "tb").iterdir())
    assert not [p for p in finished_run.rglob("*") if p.name.endswith(".tmp")]


def test_eval_prints_json(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    before = tree_hashes(run)
    p = deeprl("eval", run, "--episodes", 2, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["eval_episodes"] == 2 and len(out["returns"]) == 2
    assert out["eval_return_mean"] == pytest.approx(sum(out["returns"]) / 2)
    assert out["eval_return_mean"] > 0  # CartPole returns are positive
    assert tree_hashes(run) == before, "eval modified the run"


def test_eval_video_records_one_file_per_episode(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    p = deeprl("eval", run, "--episodes", 2, "--video", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    videos = sorted((run / "videos").glob("*.mp4"))
    assert len(videos) == 2 and all(v.stat().st_size > 1000 for v in videos)
    assert json.loads(p.stdout)["eval_episodes"] == 2


def test_plot_writes_png(finished_run, tmp_path):
    p = deeprl("plot", finished_run, "--out", "x.png", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    png = tmp_path / "x.png"
    assert png.is_file() and png.read_bytes()[:8] == PNG_MAGIC
    assert png.stat().st_size > 1000


# -- several seeds ------------------------------------------------------------------------------------
def test_seeds_create_sibling_runs_and_a_plot(tmp_path):
    # small settings through a preset file (the children are started with the same --preset)
    (tmp_path / "small.yaml").write_text("".join(o.replace("=", ": ") + "\n" for o in SMALL))
    p = deeprl("train", "ppo", "--env", "CartPole-v1", "--seeds", 0, 1, "--steps", 512, "--run-dir", "multi",
               "--preset", "small.yaml", cwd=tmp_path, timeout=240)
    assert p.returncode == 0, p.stderr + "".join(f.read_text() for f in (tmp_path / "multi").glob("*.log"))
    base = tmp_path / "multi"
    losses = {}
    for s in (0, 1):
        d = base / f"seed{s}"
        for name in ("config.yaml", "metrics.csv", "summary.json", "checkpoints/latest.pt"):
            assert (d / name).is_file(), f"seed{s}/{name}"
        summary = json.loads((d / "summary.json").read_text())
        assert SUMMARY_KEYS <= summary.keys(), SUMMARY_KEYS - summary.keys()
        assert summary["seed"] == s and summary["env"] == "CartPole-v1" and summary["algo"] == "ppo"
        assert summary["env_steps"] == 512 and summary["eval_episodes"] == 2
        assert any(f.name.startswith("events.out.tfevents") for f in (d / "tb").iterdir())
        assert "seed: %d" % s in (d / "config.yaml").read_text()
        with open(d / "metrics.csv", newline="") as f:
            losses[s] = [row["loss/value"] for row in csv.DictReader(f) if row.get("loss/value")]
        assert len(losses[s]) == 4  # 512 steps / (2 envs * 64 steps)
    assert (base / "learning_curves.png").read_bytes()[:8] == PNG_MAGIC
    assert losses[0] != losses[1], "different seeds gave identical training runs"


# -- documented argument order -----------------------------------------------------------------------
def test_overrides_after_options_as_documented(tmp_path):
    p = deeprl("train", "ppo", "--env", "CartPole-v1", "--steps", 256, "--preset", "none", "--run-dir", "r",
               *SMALL, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "n_steps: 64" in (tmp_path / "r" / "config.yaml").read_text()


def test_seeds_with_overrides(tmp_path):
    p = deeprl("train", "ppo", *SMALL, "--env", "CartPole-v1", "--seeds", 0, 1, "--steps", 256,
               "--preset", "none", "--run-dir", "multi", cwd=tmp_path, timeout=240)
    assert p.returncode == 0, p.stderr
    for s in (0, 1):
        assert "n_steps: 64" in (tmp_path / "multi" / f"seed{s}" / "config.yaml").read_text()


def test_resume_rejects_options_it_ignores(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    before = tree_hashes(run)
    p = deeprl("train", "--resume", run, "--seed", 5, cwd=tmp_path)
    assert p.returncode == 2
    assert "--seed" in error_line(p)
    assert tree_hashes(run) == before


# -- non-finite values (in process: the test env is registered in this process) -------------------------
nan_env.register()
NAN_ARGS = ["n_steps=8", "batch_size=8", "n_epochs=1", "eval_episodes=0", "checkpoint_every=8",
            "torch_threads=1", "--steps", "200", "--preset", "none", "--no-progress"]


def test_nan_observation_stops_training_via_cli(tmp_path, capsys):
    run = tmp_path / "run"
    rc = cli.main(["train", "ppo", *NAN_ARGS, "--env", nan_env.NAN_ENV_ID, "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert rc == NonFiniteError.exit_code == 3
    last = err.strip().splitlines()[-1]
    assert last.startswith("deeprl: error:") and "observation" in last and "env step 50" in last
    assert not (run / "summary.json").exists()
    good = PPO.load(run / "checkpoints" / "latest.pt")  # the last good checkpoint still loads
    assert good.train_state["env_steps"] == 48
    assert good.train_state["env_steps"] < good.run.total_steps


def test_nan_observation_stops_training_via_api():
    agent = PPO(nan_env.NAN_ENV_ID, preset="none", n_steps=8, batch_size=8, n_epochs=1, eval_episodes=0,
                total_steps=200)
    with pytest.raises(NonFiniteError, match=r"observation.*env step 50"):
        agent.learn()


def test_nan_reward_stops_training():
    agent = PPO(nan_env.NAN_REWARD_ENV_ID, preset="none", n_steps=8, batch_size=8, n_epochs=1,
                eval_episodes=0, total_steps=200)
    with pytest.raises(NonFiniteError, match="reward"):
        agent.learn()


def test_nan_reward_names_the_step():
    agent = PPO(nan_env.NAN_REWARD_ENV_ID, preset="none", n_steps=8, batch_size=8, n_epochs=1,
                eval_episodes=0, total_steps=200)
    with pytest.raises(NonFiniteError, match="env step 50"):
        agent.learn()


def test_nan_reset_observation_is_reported_as_observation():
    agent = PPO(nan_env.NAN_RESET_ENV_ID, preset="none", n_steps=8, batch_size=8, n_epochs=1,
                eval_episodes=0, total_steps=200)
    with pytest.raises(NonFiniteError, match=r"observation.*env step 50"):
        agent.learn()


def test_nan_diagnostic_metric_is_not_a_training_failure():
    agent = PPO("CartPole-v1", preset="none", num_envs=1, n_steps=1, batch_size=1, n_epochs=1, eval_episodes=0,
                total_steps=4)
    agent.learn()
    assert agent.train_state["env_steps"] == 4
