"""`deeprl train lqr|ilqr|mpc|mcts` write the same run directory as every other algorithm
(resolved config.yaml, metrics.csv, summary.json with the time per action, learning_curve.png,
checkpoints) and `deeprl eval RUN_DIR` replays the saved planner; unsupported environments and
ill-posed settings end in one line and exit code 2, writing nothing."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import yaml

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def deeprl(*args, cwd, timeout=180):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "deeprl", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def error_line(p) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{p.stderr}"
    assert lines[0].startswith("deeprl: error: ") and "Traceback" not in p.stderr
    return lines[0]


RUNS = [
    ("lqr", "deeprl/LinearQuadratic-v0", ["--steps", 200, "eval_every=100", "eval_episodes=2"]),
    ("ilqr", "Pendulum-v1", ["--steps", 20, "steps_per_update=10", "eval_episodes=1", "horizon=10", "max_iter=5",
                             "replan_every=5", "restart_every_plan=false"]),
    ("mpc", "Pendulum-v1", ["--steps", 40, "steps_per_update=20", "eval_every=20", "eval_episodes=1",
                            "planner=cem", "horizon=8", "num_samples=30", "num_elites=5", "num_iterations=2"]),
    ("mcts", "deeprl/DeterministicMaze-v0", ["--steps", 30, "steps_per_update=10", "eval_every=15",
                                             "eval_episodes=2", "num_simulations=40"]),
]


@pytest.mark.parametrize("algo, env_id, args", RUNS, ids=[r[0] for r in RUNS])
def test_train_and_eval_a_planner(tmp_path, algo, env_id, args):
    p = deeprl("train", algo, "--env", env_id, "--run-dir", "run", "--no-progress", *args, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    run = tmp_path / "run"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["algo"] == algo and cfg["run"]["env_id"] == env_id
    summary = json.loads((run / "summary.json").read_text())
    assert summary["algo"] == algo and summary["env_steps"] >= int(args[1])
    assert summary["eval_return_mean"] is not None and summary["time_per_action_s"] > 0
    assert summary["actions_planned"] >= summary["env_steps"]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert rows and any(r.get("time/per_action_s") for r in rows)
    assert (run / "learning_curve.png").read_bytes()[:8] == PNG_MAGIC
    assert (run / "checkpoints" / "latest.pt").is_file()
    e = deeprl("eval", "run", "--episodes", 2, "--seed", 7, cwd=tmp_path)
    assert e.returncode == 0, e.stderr
    returns = json.loads(e.stdout)["returns"]
    assert len(returns) == 2
    if algo == "lqr":  # deterministic LQ env: the saved LQR controller's return is exactly -V_0(x_0)
        import gymnasium as gym

        from deeprl.algos.planning.lqr import LQR

        agent, env = LQR(env_id), gym.make(env_id)
        for i, r in enumerate(returns):
            x0, _ = env.reset(seed=7 + i)
            assert r == pytest.approx(-agent.predicted_cost(x0), rel=1e-5)


@pytest.mark.parametrize("algo, env_id, extra, expect", [
    ("ilqr", "CartPole-v1", [], "supported: Pendulum-v1, deeprl/LinearQuadratic-v0"),
    ("mpc", "Acrobot-v1", [], "supported: Pendulum-v1, CartPole-v1, deeprl/LinearQuadratic-v0"),
    ("mcts", "Pendulum-v1", [], "supported: deeprl/DeterministicMaze-v0, CartPole-v1"),
    ("lqr", "CartPole-v1", [], "supported: deeprl/LinearQuadratic-v0"),
    ("mpc", "Pendulum-v1", ["planner=newton"], "planner: 'newton' is not one of random, cem, mppi"),
    ("mpc", "Pendulum-v1", ["num_samples=10", "num_elites=20"], "num_elites: must be <= num_samples"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, algo, env_id, extra, expect):
    p = deeprl("train", algo, "--env", env_id, "--run-dir", "run", "--no-progress", *extra, cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert expect in error_line(p)
    assert list(tmp_path.iterdir()) == [], "an invalid command wrote files"
