"""Run directories written before core v2 (main of 2026-12-02, tests/fixtures/runs_2026-12-02)
load, act exactly as they did, evaluate and resume with today's code: PPO (with observation
normalisation), SAC, DQN (prioritized n-step replay, whose buffer lived in the algorithm's
state then), DDPG (OU noise state), TD3, BC (gradient steps counted as env steps then),
Q-learning and UCB."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_resume import run_cli

from deeprl.algos import ALGORITHMS
from deeprl.core import checkpoint
from deeprl.runners.train import train

FIXTURES = Path(__file__).parent / "fixtures" / "runs_2026-12-02"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def _copy(name, tmp_path) -> Path:
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    return run


def test_every_fixture_is_there():
    assert CASES == ["bc", "ddpg", "dqn", "ppo", "q_learning", "sac", "td3", "ucb"]


@pytest.mark.parametrize("name", CASES)
def test_old_run_loads_acts_the_same_and_resumes(name, tmp_path):
    run = _copy(name, tmp_path)
    old = checkpoint.load(run / "checkpoints" / "latest.pt")
    cls = ALGORITHMS[old["algo"]]
    agent = cls.load(run / "checkpoints" / "latest.pt", eval_episodes=2)
    expected = np.load(run / "expected.npz")
    np.testing.assert_array_equal(agent.predict(expected["obs"]), expected["actions"])

    counter = {"offline": "grad_steps", "solve": "iterations"}.get(cls.loop, "env_steps")
    done = agent.train_state[counter]
    assert done == old["run_config"]["total_steps"]  # BC's old env_steps became grad_steps
    if cls.loop == "replay":
        assert agent.replay is not None and len(agent.replay) == min(done, agent.cfg.buffer_size)
    rows_before = len(list(csv.DictReader(open(run / "metrics.csv"))))
    agent.set_budget(done + done // 2)
    summary = train(agent, run_dir=run)
    assert summary[counter] >= done + done // 2
    assert np.isfinite(summary["eval_return_mean"])
    assert len(list(csv.DictReader(open(run / "metrics.csv")))) > rows_before
    resumed = checkpoint.load(run / "checkpoints" / "latest.pt")
    assert resumed["train"][counter] == summary[counter]


def test_old_run_resumes_from_the_command_line(tmp_path):
    run = _copy("ppo", tmp_path)
    p = run_cli(["train", "--resume", str(run), "--steps", "512", "--no-progress"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] >= 512
