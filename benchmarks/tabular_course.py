"""Course experiments for the tabular toolbox (bandits, SARSA vs Q-learning).

    python benchmarks/tabular_course.py [--out benchmarks/results] [--quick]

(a) Regret of epsilon-greedy (epsilon = 0.1), UCB1 and Thompson sampling on the default
    deeprl/BernoulliBandit-v0 arms (p = 0.1, 0.3, 0.5, 0.7, 0.8), 20 seeds, 20,000 plays
    (``deeprl.tabular.bandits.run_bandit``): tabular_bandit_regret.png (log-scale x).
(b) SARSA vs Q-learning with the library's agents (``deeprl.algos``, the same code as
    ``deeprl train sarsa|q_learning``), learning curves of the epsilon-greedy training returns
    and the greedy evaluation returns:
    - CliffWalking-v1 (Sutton & Barto Example 6.6: alpha = 0.5, epsilon = 0.1, gamma = 1),
      5 seeds x 20,000 steps, plus each run's greedy path (length, rows visited);
    - FrozenLake8x8-v1 (slippery), 3 seeds x 400,000 steps (epsilon 1 -> 0.1 over the first
      half, alpha 0.1 -> 0), with the final greedy policy's success rate (exact, by backward
      induction over the 200-step limit, and simulated) against value iteration's.
(c) Q-learning on FrozenLake-v1 4x4 (the unit test's setting, 5 seeds): greedy success rate
    within the 100-step limit vs value iteration's, exact and simulated with 10,000 episodes
    (standard errors reported).

Writes tabular_bandits.json, tabular_control.json and the PNGs into --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from deeprl.algos import ALGORITHMS  # noqa: E402
from deeprl.runners.train import train  # noqa: E402
from deeprl.tabular import from_gym, value_iteration  # noqa: E402
from deeprl.tabular.bandits import DEFAULT_PROBS, UCB1, EpsilonGreedy, ThompsonBernoulli, run_bandit  # noqa: E402
from deeprl.tabular.model_free import epsilon_greedy_action, q_learning_update  # noqa: E402

# ------------------------------------------------------------------------------------------
# (a) bandits
# ------------------------------------------------------------------------------------------


def bandits(out: Path, seeds: int, horizon: int) -> dict:
    k = len(DEFAULT_PROBS)
    makers = {"epsilon_greedy (0.1)": lambda: EpsilonGreedy(k, 0.1), "ucb1 (c=2)": lambda: UCB1(k),
              "thompson (Beta(1,1))": lambda: ThompsonBernoulli(k)}
    curves, result = {}, {"probs": list(DEFAULT_PROBS), "seeds": seeds, "horizon": horizon, "algorithms": {}}
    for name, make in makers.items():
        t0 = time.perf_counter()
        runs = np.array([run_bandit(DEFAULT_PROBS, make(), horizon, np.random.default_rng(s))["cumulative_regret"]
                         for s in range(seeds)])
        curves[name] = runs
        final = runs[:, -1]
        result["algorithms"][name] = {
            "regret_mean": float(final.mean()), "regret_se": float(final.std(ddof=1) / math.sqrt(seeds)),
            "regret_at": {str(t): float(runs[:, t - 1].mean()) for t in (100, 1000, 10_000, horizon) if t <= horizon},
            "wall_s": round(time.perf_counter() - t0, 2)}
    fig, ax = plt.subplots(figsize=(6, 4))
    t = np.arange(1, horizon + 1)
    for name, runs in curves.items():
        m, se = runs.mean(0), runs.std(0, ddof=1) / math.sqrt(seeds)
        ax.plot(t, m, label=name)
        ax.fill_between(t, m - 2 * se, m + 2 * se, alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("plays T (log scale)")
    ax.set_ylabel("cumulative expected regret")
    ax.set_title(f"Bernoulli bandit p={list(DEFAULT_PROBS)}, {seeds} seeds (±2 SE)", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "tabular_bandit_regret.png", dpi=120)
    plt.close(fig)
    return result


# ------------------------------------------------------------------------------------------
# (b) SARSA vs Q-learning with the agents
# ------------------------------------------------------------------------------------------


def read_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def run_agent(name: str, env_id: str, seed: int, steps: int, **kw) -> tuple:
    agent = ALGORITHMS[name](env_id, seed=seed, total_steps=steps, **kw)
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(agent, run_dir=Path(tmp) / "run")
        rows = read_rows(Path(tmp) / "run")
    train_curve = [(int(r["time/env_steps"]), float(r["train/episode_return_mean"])) for r in rows
                   if r.get("train/episode_return_mean")]
    eval_curve = [(int(r["time/env_steps"]), float(r["eval/return_mean"])) for r in rows if r.get("eval/return_mean")]
    return agent, summary, train_curve, eval_curve


def greedy_path(env_id: str, Q: np.ndarray, max_steps: int = 100) -> list[int]:
    u = gym.make(env_id).unwrapped
    s, _ = u.reset(seed=0)
    path = [int(s)]
    for _ in range(max_steps):
        s, _, term, _, _ = u.step(int(np.argmax(Q[s])))
        path.append(int(s))
        if term:
            break
    return path


def success_probability(env, actions, horizon: int) -> float:
    """Exact P(reach the goal within ``horizon`` steps) of a deterministic FrozenLake policy."""
    P, n = env.unwrapped.P, env.observation_space.n
    p = np.zeros(n)
    for _ in range(horizon):
        p = np.array([sum(prob * (r if done else p[nxt]) for prob, nxt, r, done in P[s][int(actions[s])])
                      for s in range(n)])
    return float(env.unwrapped.initial_state_distrib @ p)


def simulate_success(env_id: str, actions, episodes: int, seed: int, horizon: int) -> tuple[float, float]:
    u = gym.make(env_id).unwrapped
    u.reset(seed=seed)
    wins = 0
    for _ in range(episodes):
        s, _ = u.reset()
        for _ in range(horizon):
            s, r, term, _, _ = u.step(int(actions[s]))
            if term:
                wins += r > 0
                break
    p = wins / episodes
    return p, math.sqrt(p * (1 - p) / episodes)


def mean_curve(curves: list[list[tuple]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curves logged at the same steps -> (steps, mean, standard error over seeds)."""
    n = min(len(c) for c in curves)
    x = np.array([s for s, _ in curves[0][:n]])
    y = np.array([[v for _, v in c[:n]] for c in curves])
    se = y.std(0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1 else np.zeros(n)
    return x, y.mean(0), se


def plot_control(path: Path, title: str, runs: dict, ylim=None, eval_note: str = "") -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in ((axes[0], "train", "epsilon-greedy training return (last 20 episodes)"),
                           (axes[1], "eval", "greedy evaluation return" + eval_note)):
        for name, r in runs.items():
            x, m, se = mean_curve(r[key])
            ax.plot(x, m, label=name)
            ax.fill_between(x, m - 2 * se, m + 2 * se, alpha=0.2)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("env steps")
    if ylim:
        axes[0].set_ylim(*ylim)
    axes[0].set_ylabel("return")
    axes[0].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cliff(out: Path, seeds: int, steps: int) -> dict:
    kw = dict(learning_rate=0.5, epsilon=0.1, gamma=1.0, eval_every=1000, eval_episodes=1, log_every=500,
              checkpoint_every=0)
    runs, result = {}, {"env": "CliffWalking-v1", "seeds": seeds, "steps": steps, "config": kw, "algorithms": {}}
    for name in ("sarsa", "q_learning"):
        runs[name] = {"train": [], "eval": []}
        per_seed = []
        for seed in range(seeds):
            agent, summary, tr, ev = run_agent(name, "CliffWalking-v1", seed, steps, **kw)
            runs[name]["train"].append(tr)
            runs[name]["eval"].append(ev)
            path = greedy_path("CliffWalking-v1", agent.Q)
            per_seed.append({"seed": seed, "final_train_return_last20": tr[-1][1], "final_eval_return": ev[-1][1],
                             "greedy_path_length": len(path) - 1, "greedy_path_rows": sorted({s // 12 for s in path}),
                             "episodes": agent.collector.episodes, "wall_s": summary["wall_time_s"]})
        late = [np.mean([v for s, v in tr if s > steps // 2]) for tr in runs[name]["train"]]
        result["algorithms"][name] = {
            "train_return_second_half_mean": float(np.mean(late)),
            "train_return_second_half_se": float(np.std(late, ddof=1) / math.sqrt(seeds)),
            "final_eval_returns": [p["final_eval_return"] for p in per_seed],
            "greedy_path_lengths": [p["greedy_path_length"] for p in per_seed], "runs": per_seed}
    plot_control(out / "tabular_cliffwalking.png",
                 f"CliffWalking-v1: SARSA vs Q-learning (alpha 0.5, epsilon 0.1), {seeds} seeds (±2 SE)", runs,
                 ylim=(-150, 0), eval_note="\n(-1000: the greedy policy loops until the 1000-step limit)")
    return result


def frozen_lake_8x8(out: Path, seeds: int, steps: int, sim_episodes: int) -> dict:
    env_id = "FrozenLake8x8-v1"
    kw = dict(epsilon=1.0, epsilon_final=0.1, epsilon_decay=0.5, learning_rate=0.1, learning_rate_schedule="linear",
              gamma=0.99, eval_every=steps // 20, eval_episodes=200, checkpoint_every=0, log_every=steps // 40)
    env = gym.make(env_id)
    horizon = env.spec.max_episode_steps
    _, pi_star, _ = value_iteration(from_gym(env), 0.99)
    p_star = success_probability(env, pi_star, horizon)
    sim_star = simulate_success(env_id, pi_star, sim_episodes, 99, horizon)
    runs = {}
    result = {"env": env_id, "seeds": seeds, "steps": steps, "config": kw, "time_limit": horizon,
              "value_iteration": {"success_exact": p_star, "success_simulated": sim_star[0],
                                  "success_simulated_se": sim_star[1], "episodes": sim_episodes},
              # VI maximises the gamma-discounted return, not the success rate within the limit:
              "value_iteration_success_by_gamma": {
                  str(g): success_probability(env, value_iteration(from_gym(env), g)[1], horizon)
                  for g in (0.9, 0.95, 0.99, 0.999, 0.9999)},
              "algorithms": {}}
    for name in ("sarsa", "q_learning"):
        runs[name] = {"train": [], "eval": []}
        per_seed = []
        for seed in range(seeds):
            agent, summary, tr, ev = run_agent(name, env_id, seed, steps, **kw)
            runs[name]["train"].append(tr)
            runs[name]["eval"].append(ev)
            greedy = np.argmax(agent.Q, axis=1)
            sim = simulate_success(env_id, greedy, sim_episodes, 1000 + seed, horizon)
            per_seed.append({"seed": seed, "success_exact": success_probability(env, greedy, horizon),
                             "success_simulated": sim[0], "success_simulated_se": sim[1],
                             "wall_s": summary["wall_time_s"], "sps": summary["sps"]})
        result["algorithms"][name] = {"success_exact": [p["success_exact"] for p in per_seed], "runs": per_seed}
    plot_control(out / "tabular_frozenlake8x8.png",
                 f"FrozenLake8x8-v1 (slippery): SARSA vs Q-learning, {seeds} seeds (±2 SE); "
                 f"value iteration succeeds {p_star:.3f}", runs)
    return result


# ------------------------------------------------------------------------------------------
# (c) Q-learning on FrozenLake 4x4 vs value iteration
# ------------------------------------------------------------------------------------------


def frozen_lake_4x4(seeds: int, steps: int, episodes: int) -> dict:
    env = gym.make("FrozenLake-v1")
    u = env.unwrapped
    _, pi_star, _ = value_iteration(from_gym(env), 0.99)
    sim_star = simulate_success("FrozenLake-v1", pi_star, episodes, 99, 100)
    result = {"steps": steps, "episodes": episodes, "settings": "epsilon 0.5, alpha 0.1 -> 0 linearly, gamma 0.99",
              "value_iteration": {"success_exact": success_probability(env, pi_star, 100),
                                  "success_simulated": sim_star[0], "success_simulated_se": sim_star[1]},
              "q_learning": []}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        Q = np.zeros((16, 4))
        s, _ = u.reset(seed=seed)
        k = 0
        for t in range(steps):
            a = epsilon_greedy_action(Q[s], 0.5, rng)
            s_next, r, term, _, _ = u.step(a)
            q_learning_update(Q, s, a, r, s_next, term, 0.1 * (1 - t / steps), 0.99)
            s, k = s_next, k + 1
            if term or k == 100:
                (s, _), k = u.reset(), 0
        greedy = np.argmax(Q, axis=1)
        sim = simulate_success("FrozenLake-v1", greedy, episodes, 1000 + seed, 100)
        result["q_learning"].append({"seed": seed, "success_exact": success_probability(env, greedy, 100),
                                     "success_simulated": sim[0], "success_simulated_se": sim[1],
                                     "same_policy_as_vi": bool(np.array_equal(greedy, pi_star[:16]))})
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--quick", action="store_true", help="tiny budgets, to check that the script runs")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    q = args.quick
    machine = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
               "gymnasium": gym.__version__, "processor": platform.processor() or platform.machine()}
    t0 = time.perf_counter()
    band = bandits(out, seeds=3 if q else 20, horizon=2000 if q else 20_000)
    (out / "tabular_bandits.json").write_text(json.dumps({"machine": machine, **band}, indent=2))
    print("bandits", json.dumps({k: v["regret_mean"] for k, v in band["algorithms"].items()}))
    control = {"machine": machine,
               "cliffwalking": cliff(out, seeds=2 if q else 5, steps=3000 if q else 20_000),
               "frozenlake8x8": frozen_lake_8x8(out, seeds=1 if q else 3, steps=20_000 if q else 400_000,
                                                sim_episodes=500 if q else 5000),
               "frozenlake4x4_q_learning_vs_vi": frozen_lake_4x4(seeds=1 if q else 5, steps=20_000 if q else 100_000,
                                                                 episodes=1000 if q else 10_000)}
    control["wall_s"] = round(time.perf_counter() - t0, 1)
    (out / "tabular_control.json").write_text(json.dumps(control, indent=2))
    for name, r in control["cliffwalking"]["algorithms"].items():
        print("cliff", name, r["train_return_second_half_mean"], r["greedy_path_lengths"])
    for name, r in control["frozenlake8x8"]["algorithms"].items():
        print("frozenlake8x8", name, r["success_exact"], "VI", control["frozenlake8x8"]["value_iteration"])
    print("frozenlake4x4", json.dumps(control["frozenlake4x4_q_learning_vs_vi"]))
    print(f"total {control['wall_s']} s")


if __name__ == "__main__":
    main()
