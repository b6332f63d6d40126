"""Off-policy algorithms, deeprl vs Stable-Baselines3, side by side in one run.

Each case uses rl-baselines3-zoo's hyperparameters and step budget on both sides (deeprl's
preset files in deeprl/configs/ALGO/ENV.yaml hold the same values). Runs alternate deeprl,
SB3, deeprl, SB3, ... in fresh processes; wall time is ``learn()`` only; both policies are then
evaluated by the same deterministic evaluator (20 episodes).

    python benchmarks/offpolicy_vs_sb3.py --case dqn-cartpole --seeds 0 1 2 3 4
    cases: dqn-cartpole (50k), dqn-lunarlander (100k), sac-pendulum (20k), td3-pendulum (20k)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import evaluate_policy_fn, machine, run_child  # noqa: E402

EVAL_EPISODES = 20
CASES = {  # algo, env, steps, SB3 keyword arguments (zoo)
    "dqn-cartpole": ("dqn", "CartPole-v1", 50_000, dict(
        learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
        target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
        exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]))),
    "dqn-lunarlander": ("dqn", "LunarLander-v3", 100_000, dict(
        learning_rate=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0, gamma=0.99,
        target_update_interval=250, train_freq=4, gradient_steps=-1, exploration_fraction=0.12,
        exploration_final_eps=0.1, policy_kwargs=dict(net_arch=[256, 256]))),
    "sac-pendulum": ("sac", "Pendulum-v1", 20_000, dict(learning_rate=1e-3)),
    "td3-pendulum": ("td3", "Pendulum-v1", 20_000, dict(
        gamma=0.98, buffer_size=200_000, learning_starts=10_000, gradient_steps=-1, train_freq=(1, "episode"),
        learning_rate=1e-3, policy_kwargs=dict(net_arch=[400, 300]), noise_std=0.1)),
}


def one_deeprl(case: str, seed: int, threads: int | None, precision: str = "float32") -> dict:
    import torch

    from deeprl import ALGORITHMS

    algo, env, steps, _ = CASES[case]
    agent = ALGORITHMS[algo](env, seed=seed, eval_every=0, eval_episodes=0, checkpoint_every=0,
                             torch_threads=threads, matmul_precision=precision)
    assert agent.run.total_steps == steps, "the deeprl preset and the benchmark disagree on the budget"
    t = time.perf_counter()
    agent.learn(steps)
    wall = time.perf_counter() - t
    rets = evaluate_policy_fn(lambda o: agent.predict(o), env, EVAL_EPISODES, 10_000 + seed)
    return {"lib": "deeprl", "seed": seed, "wall_s": wall, "threads": torch.get_num_threads(),
            "precision": precision, "eval_mean": sum(rets) / len(rets)}


def one_sb3(case: str, seed: int) -> dict:
    import numpy as np
    import stable_baselines3 as sb3
    import torch
    from stable_baselines3.common.noise import NormalActionNoise

    algo, env_id, steps, kw = CASES[case]
    kw = dict(kw)
    env = __import__("gymnasium").make(env_id)
    if "noise_std" in kw:
        n = env.action_space.shape[0]
        kw["action_noise"] = NormalActionNoise(np.zeros(n), kw.pop("noise_std") * np.ones(n))
    model = getattr(sb3, algo.upper())("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kw)
    t = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - t
    rets = evaluate_policy_fn(lambda o: model.predict(o, deterministic=True)[0], env_id, EVAL_EPISODES,
                              10_000 + seed)
    return {"lib": "sb3", "seed": seed, "wall_s": wall, "threads": torch.get_num_threads(),
            "eval_mean": sum(rets) / len(rets)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--case", choices=list(CASES), required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--threads", type=int, default=None,
                   help="deeprl's torch threads (default: the algorithm's); SB3 keeps torch's default")
    p.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                   help="deeprl's matmul_precision (SB3 always float32)")
    p.add_argument("--one", choices=["deeprl", "sb3"])
    p.add_argument("--out")
    p.add_argument("--merge", action="store_true",
                   help="add these seeds to the runs already in the output file (other seeds kept)")
    a = p.parse_args()
    if a.one:
        r = (one_deeprl(a.case, a.seeds[0], a.threads, a.precision) if a.one == "deeprl"
             else one_sb3(a.case, a.seeds[0]))
        print(json.dumps(r))
        return
    rows = []
    for s in a.seeds:
        for lib in ("deeprl", "sb3"):
            r = run_child(__file__, ["--case", a.case, "--one", lib, "--seeds", str(s), "--precision", a.precision,
                                     *(["--threads", str(a.threads)] if a.threads else [])])
            rows.append(r)
            print(json.dumps(r), flush=True)
    out = a.out or f"benchmarks/results/{a.case}{'_bf16' if a.precision == 'bfloat16' else ''}_vs_sb3.json"
    commands = ["python " + " ".join(sys.argv)]
    if a.merge and os.path.exists(out):
        prev = json.load(open(out))
        rows = [r for r in prev["runs"] if r["seed"] not in a.seeds] + rows
        commands = prev.get("commands", [prev["command"]]) + commands
    rows.sort(key=lambda r: (r["seed"], r["lib"]))
    ours = [r for r in rows if r["lib"] == "deeprl"]
    sb3 = [r for r in rows if r["lib"] == "sb3"]
    algo, env, steps, _ = CASES[a.case]
    result = {
        "machine": machine(), "command": commands[-1], "commands": commands, "case": a.case, "env": env,
        "steps": steps, "runs": rows,
        "median_wall_s": {"deeprl": statistics.median(r["wall_s"] for r in ours),
                          "sb3": statistics.median(r["wall_s"] for r in sb3)},
        "speedup_per_seed": [round(b["wall_s"] / o["wall_s"], 2) for o, b in zip(ours, sb3)],
        "eval_mean": {"deeprl": statistics.mean(r["eval_mean"] for r in ours),
                      "sb3": statistics.mean(r["eval_mean"] for r in sb3)},
        "eval_std_across_seeds": {"deeprl": statistics.pstdev(r["eval_mean"] for r in ours),
                                  "sb3": statistics.pstdev(r["eval_mean"] for r in sb3)},
    }
    result["speedup_median"] = round(result["median_wall_s"]["sb3"] / result["median_wall_s"]["deeprl"], 2)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: result[k] for k in ("median_wall_s", "speedup_median", "speedup_per_seed", "eval_mean")}))


if __name__ == "__main__":
    main()
