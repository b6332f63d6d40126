"""Tabular agents end to end: every CLI name trains, evaluates and round-trips through a
checkpoint; run directories have the usual files; an interrupted SARSA run resumes to the
same Q table as an uninterrupted one; DP agents reproduce ``deeprl.tabular.dp``; bandits log
their regret; non-tabular environments are refused with one line and exit 2."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from deeprl import cli
from deeprl.algos import ALGORITHMS, FAMILIES
from deeprl.algos.tabular.sarsa import Sarsa
from deeprl.core import checkpoint
from deeprl.envs.make import make_env
from deeprl.runners.train import train
from deeprl.tabular import from_gym, policy_iteration, value_iteration

FAST = {"eval_every": 0, "eval_episodes": 2, "checkpoint_every": 0}
CASES = {  # name -> (env, steps, overrides)
    "value_iteration": ("FrozenLake-v1", 1, {}),
    "policy_iteration": ("deeprl/GridWorld-v0", 1, {}),
    "q_learning": ("CliffWalking-v1", 1500, {"learning_rate": 0.5}),
    "sarsa": ("deeprl/GridWorld-v0", 1500, {"learning_rate": 0.5}),
    "expected_sarsa": ("FrozenLake-v1", 1500, {"num_envs": 2}),
    "double_q_learning": ("CliffWalking-v1", 1500, {"learning_rate": 0.5}),
    "sarsa_lambda": ("deeprl/GridWorld-v0", 1500, {"num_envs": 2, "steps_per_update": 4}),
    "dyna_q": ("CliffWalking-v1", 500, {"learning_rate": 0.5, "planning_steps": 5}),
    "mc_control": ("FrozenLake-v1", 1500, {"num_envs": 2}),
    "ucb": ("deeprl/BernoulliBandit-v0", 1500, {}),
    "epsilon_greedy": ("deeprl/BernoulliBandit-v0", 1500, {}),
    "thompson": ("deeprl/GaussianBandit-v0", 1500, {}),
}
RUN_FILES = {"config.yaml", "metrics.csv", "summary.json", "learning_curve.png", "tb", "checkpoints"}


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def tables(agent) -> dict:
    return {k: v for k, v in agent.extra_state().items() if isinstance(v, np.ndarray)}


def test_every_cli_name_is_registered():
    assert set(CASES) == set(FAMILIES["tabular"]) and set(CASES) <= set(ALGORITHMS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_trains_evaluates_and_round_trips_a_checkpoint(name, tmp_path):
    env, steps, kw = CASES[name]
    agent = ALGORITHMS[name](env, seed=1, total_steps=steps, **FAST, **kw)
    summary = train(agent, run_dir=tmp_path / "run")
    assert summary["eval_return_mean"] is not None
    if agent.loop == "solve":  # dynamic programming on the known model: no sample is taken
        assert summary["env_steps"] == 0 and summary["grad_steps"] == 0 and summary["iterations"] == 1
    else:
        assert summary["env_steps"] >= steps
    assert not agent.modules() and tables(agent)  # tables only, stored as arrays
    loaded = ALGORITHMS[name].load(tmp_path / "run" / "checkpoints" / "latest.pt")
    for k, v in tables(agent).items():
        np.testing.assert_array_equal(tables(loaded)[k], v, err_msg=k)
    obs, _ = make_env(env).reset(seed=0)
    assert np.array_equal(loaded.predict(obs), agent.predict(obs))
    assert np.array_equal(loaded.predict(np.stack([obs, obs])), agent.predict(np.stack([obs, obs])))


def test_cli_run_directory_eval_and_learning(tmp_path, capsys):
    run_dir = tmp_path / "q"
    rc = cli.main(["train", "q_learning", "--env", "CliffWalking-v1", "--steps", "4000", "--run-dir", str(run_dir),
                   "--no-progress", "learning_rate=0.5", "eval_every=2000", "checkpoint_every=2000"])
    assert rc == 0, capsys.readouterr().err
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} >= {"latest.pt", "step_0000004000.pt"}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["algo"] == "q_learning" and summary["env_steps"] == 4000
    assert summary["eval_return_mean"] == -13.0  # the optimal cliff-edge path
    logged = rows(run_dir)
    assert "train/td_error_abs" in logged[0] and len(logged) < 20  # a row per 1000 steps, not per step
    capsys.readouterr()
    assert cli.main(["eval", str(run_dir), "--episodes", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["returns"] == [-13.0] * 3


def test_interrupted_sarsa_run_resumes_to_the_same_q_table(tmp_path, monkeypatch, capsys):
    """SARSA keeps each env's last step until the next action is known: the checkpoint must
    carry it, with the RNG and the environments' state, for an exact resume."""
    args = ["--env", "deeprl/GridWorld-v0", "--steps", "3000", "--seed", "3", "--no-progress",
            "num_envs=2", "steps_per_update=3", "checkpoint_every=1200", "eval_every=1500"]
    reference = tmp_path / "reference"
    assert cli.main(["train", "sarsa", *args, "--run-dir", str(reference)]) == 0
    orig, calls = Sarsa.update, [0]

    def update(self, batch, progress):
        calls[0] += 1
        if calls[0] == 330:  # after env step 1980; the last checkpoint was at 1200
            raise KeyboardInterrupt
        return orig(self, batch, progress)

    monkeypatch.setattr(Sarsa, "update", update)
    run_dir = tmp_path / "run"
    assert cli.main(["train", "sarsa", *args, "--run-dir", str(run_dir)]) == 130
    monkeypatch.undo()
    saved = checkpoint.load(run_dir / "checkpoints" / "latest.pt")
    assert saved["train"]["env_steps"] == 1200 and saved["extra"]["has_pending"].any()
    assert cli.main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert "resuming from env step 1200" in capsys.readouterr().err
    a, b = Sarsa.load(reference / "checkpoints" / "latest.pt"), Sarsa.load(run_dir / "checkpoints" / "latest.pt")
    assert b.train_state["env_steps"] == 3000
    np.testing.assert_array_equal(a.Q, b.Q)
    assert np.abs(a.Q).sum() > 0
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (reference, run_dir))
    assert sa["eval_returns"] == sb["eval_returns"] and sa["train_return_mean"] == sb["train_return_mean"]
    assert [r["eval/return_mean"] for r in rows(reference)] == [r["eval/return_mean"] for r in rows(run_dir)]


@pytest.mark.parametrize("name, solve", [("value_iteration", value_iteration), ("policy_iteration", policy_iteration)])
def test_dp_agents_solve_the_known_model(name, solve, tmp_path, capsys):
    run_dir = tmp_path / name
    rc = cli.main(["train", name, "--env", "FrozenLake-v1", "--run-dir", str(run_dir), "--no-progress",
                   "eval_episodes=200", "gamma=0.95"])
    assert rc == 0, capsys.readouterr().err
    agent = ALGORITHMS[name].load(run_dir / "checkpoints" / "latest.pt")
    mdp = from_gym(make_env("FrozenLake-v1"))
    V, pi, _ = solve(mdp, 0.95)
    np.testing.assert_allclose(agent.V, V, atol=1e-8)
    np.testing.assert_array_equal(agent.predict(np.arange(16)), pi[:16])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["iterations"] == 1 and 0.6 < summary["eval_return_mean"] < 0.9  # success rate ~0.73


def test_bandit_agents_log_regret(tmp_path, capsys):
    results = {}
    for name in ("ucb", "thompson", "epsilon_greedy"):
        run_dir = tmp_path / name
        rc = cli.main(["train", name, "--env", "deeprl/BernoulliBandit-v0", "--steps", "4000", "--seed", "0",
                       "--run-dir", str(run_dir), "--no-progress", "eval_episodes=1"])
        assert rc == 0, capsys.readouterr().err
        last = rows(run_dir)[-2]  # the last training row (the final row holds the evaluation)
        assert int(last["time/env_steps"]) == 4000
        agent = ALGORITHMS[name].load(run_dir / "checkpoints" / "latest.pt")
        assert agent.summary()["cumulative_regret"] == pytest.approx(float(last["regret/cumulative"]))
        assert agent.summary()["plays"] == 4000
        results[name] = float(last["regret/cumulative"])
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["eval_return_mean"] == pytest.approx(800, abs=60)  # the best arm (p = 0.8) over 1000 plays
    # epsilon = 0.1 pays about 0.1 * mean gap = 0.032 per play; UCB1 and Thompson far less
    assert results["epsilon_greedy"] > 100 and results["thompson"] < results["ucb"] < results["epsilon_greedy"]


@pytest.mark.parametrize("name, env, needs", [
    ("q_learning", "CartPole-v1", "Discrete observation and action spaces"),
    ("value_iteration", "CartPole-v1", "Discrete observation and action spaces"),
    ("sarsa", "Pendulum-v1", "Discrete"),
    ("ucb", "FrozenLake-v1", "bandit env"),
])
def test_non_tabular_env_is_refused_with_one_line(name, env, needs, tmp_path, capsys):
    rc = cli.main(["train", name, "--env", env, "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("deeprl: error: ") and needs in err[0]
    assert not (tmp_path / "run").exists()
