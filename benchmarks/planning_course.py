"""Planning with known dynamics (CS285 lecture 10): iLQR and MPC (CEM, MPPI, random shooting)
on Pendulum-v1, and MCTS success against the number of simulations on the deterministic maze.

Pendulum: every planner plays one full 200-step episode of the real Pendulum-v1 from each of
``--seeds`` random start states (``env.reset(seed=1000 + s)``) with its default preset (the
iLQR "fast" variant replans every 5 steps from the warm start only); reported: eval return
(mean, std, min, every episode), wall time per action (planning only) and the final angle.

MCTS: from every free cell of ``deeprl/DeterministicMaze-v0``, is the chosen first move on a
shortest path (by BFS)? Success rate per ``num_simulations`` over ``--mcts-seeds`` search seeds,
and the time per search; plus the MCTS agent's episode return from random starts against the
optimal (minus the BFS distance).

    python benchmarks/planning_course.py --seeds 0 1 2 3 4 --out benchmarks/results
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402

from deeprl.algos.planning.ilqr import ILQR  # noqa: E402
from deeprl.algos.planning.mcts import MCTSAgent  # noqa: E402
from deeprl.algos.planning.mpc import MPC  # noqa: E402
from deeprl.envs.clonable import search_simulator  # noqa: E402
from deeprl.envs.maze import MAZE_ID, MOVES  # noqa: E402
from deeprl.planning.mcts import MCTS  # noqa: E402

PENDULUM_AGENTS = {
    "ilqr": lambda s: ILQR("Pendulum-v1", seed=s),
    "ilqr_fast": lambda s: ILQR("Pendulum-v1", seed=s, horizon=40, replan_every=5, max_iter=30,
                                restart_every_plan=False),
    "mpc_cem": lambda s: MPC("Pendulum-v1", seed=s, planner="cem"),
    "mpc_mppi": lambda s: MPC("Pendulum-v1", seed=s, planner="mppi"),
    "mpc_random": lambda s: MPC("Pendulum-v1", seed=s, planner="random", num_samples=800),
    # the NumPy planners of deeprl.planning.shooting, one env row at a time (the default before 2026-12-03)
    "mpc_cem_rows": lambda s: MPC("Pendulum-v1", seed=s, planner="cem", batched=False),
    "mpc_mppi_rows": lambda s: MPC("Pendulum-v1", seed=s, planner="mppi", batched=False),
    "mpc_random_rows": lambda s: MPC("Pendulum-v1", seed=s, planner="random", num_samples=800, batched=False),
}


def pendulum_episode(agent, seed: int) -> tuple[float, float, float]:
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=1000 + seed)
    ret, done = 0.0, False
    before = (agent.clock.seconds, agent.clock.actions)
    while not done:
        obs, r, term, trunc, _ = env.step(agent.predict(obs))
        ret, done = ret + float(r), term or trunc
    secs = (agent.clock.seconds - before[0]) / (agent.clock.actions - before[1])
    final = float((env.unwrapped.state[0] + np.pi) % (2 * np.pi) - np.pi)
    return ret, secs, final


def bfs(sim) -> dict:
    dist, queue = {sim.goal: 0}, deque([sim.goal])
    while queue:
        c = queue.popleft()
        for di, dj in MOVES:
            n = (c[0] + di, c[1] + dj)
            if not sim.walls[n] and n not in dist:
                dist[n] = dist[c] + 1
                queue.append(n)
    return dist


def mcts_success(sims_list, seeds) -> list[dict]:
    sim = search_simulator(MAZE_ID)
    dist = bfs(sim)
    out = []
    for n in sims_list:
        rates, times = [], []
        for seed in seeds:
            search = MCTS(num_simulations=n, rng=seed)
            ok = []
            for c in sim.free_cells:
                t = time.perf_counter()
                a = search.search(sim, c).action
                times.append(time.perf_counter() - t)
                nxt = (c[0] + MOVES[a][0], c[1] + MOVES[a][1])
                nxt = c if sim.walls[nxt] else nxt
                ok.append(dist[nxt] == dist[c] - 1)
            rates.append(float(np.mean(ok)))
        out.append({"num_simulations": n, "success_rate_mean": float(np.mean(rates)), "success_rates": rates,
                    "time_per_search_s": float(np.mean(times)), "positions": len(sim.free_cells)})
        print(f"mcts sims={n:5d}: success {np.mean(rates):.3f} {rates}, {np.mean(times) * 1e3:.1f} ms/search",
              flush=True)
    return out


def mcts_episodes(sims_list, episodes: int) -> list[dict]:
    env = gym.make(MAZE_ID)
    dist = bfs(env.unwrapped)
    out = []
    for n in sims_list:
        agent = MCTSAgent(MAZE_ID, seed=0, num_simulations=n)
        rets, opt = [], []
        for ep in range(episodes):
            obs, _ = env.reset(seed=2000 + ep)
            opt.append(-dist[env.unwrapped.pos])
            ret, done = 0.0, False
            while not done:
                obs, r, term, trunc, _ = env.step(agent.predict(obs))
                ret, done = ret + r, term or trunc
            rets.append(ret)
        out.append({"num_simulations": n, "returns": rets, "optimal_returns": opt,
                    "return_mean": float(np.mean(rets)), "optimal_mean": float(np.mean(opt)),
                    "optimal_episodes": int(np.sum(np.array(rets) == np.array(opt))),
                    "time_per_action_s": agent.clock.per_action})
        print(f"mcts agent sims={n}: return {np.mean(rets):.2f} (optimal {np.mean(opt):.2f}), "
              f"{out[-1]['optimal_episodes']}/{episodes} optimal", flush=True)
    return out


def plot(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(results["pendulum"])
    for i, name in enumerate(names):
        r = results["pendulum"][name]["returns"]
        ax1.scatter(np.full(len(r), i) + np.linspace(-0.1, 0.1, len(r)), r, s=18)
        ax1.hlines(np.mean(r), i - 0.25, i + 0.25, color="k")
    ax1.set_xticks(range(len(names)))
    ax1.set_xticklabels([f"{n}\n{results['pendulum'][n]['time_per_action_s'] * 1e3:.0f} ms/act" for n in names],
                        fontsize=8)
    ax1.set_ylabel("episode return (200 steps)")
    ax1.set_title("Pendulum-v1, known dynamics")
    s = results.get("mcts_success")
    if not s:
        ax2.set_axis_off()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return
    ax2.semilogx([d["num_simulations"] for d in s], [d["success_rate_mean"] for d in s], "o-")
    ax2.set_xlabel("MCTS simulations per move")
    ax2.set_ylabel("first move on a shortest path")
    ax2.set_ylim(0, 1.05)
    ax2.set_title("MCTS (UCT) on deeprl/DeterministicMaze-v0")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--agents", nargs="+", default=list(PENDULUM_AGENTS))
    ap.add_argument("--mcts-sims", type=int, nargs="+", default=[3, 10, 30, 100, 300, 1000])
    ap.add_argument("--mcts-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--mcts-episodes", type=int, default=10)
    ap.add_argument("--no-mcts", action="store_true", help="only the Pendulum planners")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    results = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
               "torch": torch.__version__, "gymnasium": gym.__version__, "seeds": args.seeds,
               "command": " ".join(["python", *sys.argv]), "pendulum": {}}
    for name in args.agents:
        rets, secs, finals = [], [], []
        for s in args.seeds:
            agent = PENDULUM_AGENTS[name](s)
            r, t, f = pendulum_episode(agent, s)
            rets.append(r), secs.append(t), finals.append(f)
            print(f"{name} seed {s}: return {r:.1f}, final angle {f:+.3f}, {t * 1e3:.1f} ms/action", flush=True)
        results["pendulum"][name] = {
            "config": PENDULUM_AGENTS[name](0).cfg.__dict__, "returns": rets, "return_mean": float(np.mean(rets)),
            "return_std": float(np.std(rets)), "return_min": float(np.min(rets)), "final_angles": finals,
            "upright_within_0.1": int(np.sum(np.abs(finals) < 0.1)), "time_per_action_s": float(np.mean(secs))}
    if not args.no_mcts:
        results["mcts_success"] = mcts_success(args.mcts_sims, args.mcts_seeds)
        results["mcts_agent"] = mcts_episodes([30, 300], args.mcts_episodes)
    results["wall_time_s"] = round(time.time() - start, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "planning_course.json").write_text(json.dumps(results, indent=2, default=list))
    plot(results, out / "planning_course.png")
    print(f"wrote {out / 'planning_course.json'} and planning_course.png in {results['wall_time_s']} s")


if __name__ == "__main__":
    main()
