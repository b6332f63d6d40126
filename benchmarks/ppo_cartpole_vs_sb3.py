"""PPO on CartPole-v1, deeprl vs Stable-Baselines3, side by side in one run.

rl-baselines3-zoo's tuned hyperparameters (8 envs, n_steps 32, batch 256, 20 epochs,
gae_lambda 0.8, gamma 0.98, lr and clip linearly decayed from 1e-3 and 0.2), 100k steps.
Runs alternate deeprl, SB3, deeprl, SB3, ... (one fresh process each, each library at its own
default thread settings); wall time is ``learn()`` only; both policies are then evaluated
by the same deterministic evaluator (20 episodes).

    python benchmarks/ppo_cartpole_vs_sb3.py --seeds 0 1 2 3 4 [--out benchmarks/results/ppo_cartpole_vs_sb3.json]
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

ENV, STEPS, EVAL_EPISODES = "CartPole-v1", 100_000, 20
HP = dict(n_steps=32, batch_size=256, n_epochs=20, gae_lambda=0.8, gamma=0.98, ent_coef=0.0)


def one_deeprl(seed: int) -> dict:
    import torch

    from deeprl import PPO

    agent = PPO(ENV, seed=seed, preset="none", num_envs=8, learning_rate=1e-3, lr_schedule="linear",
                clip_range=0.2, clip_schedule="linear", eval_every=0, eval_episodes=0, checkpoint_every=0, **HP)
    t = time.perf_counter()
    agent.learn(STEPS)
    wall = time.perf_counter() - t
    rets = evaluate_policy_fn(lambda o: agent.predict(o), ENV, EVAL_EPISODES, 10_000 + seed)
    return {"lib": "deeprl", "seed": seed, "wall_s": wall, "threads": torch.get_num_threads(),
            "eval_mean": sum(rets) / len(rets)}


def one_sb3(seed: int) -> dict:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    lin = lambda v: (lambda progress_remaining: progress_remaining * v)  # noqa: E731
    env = make_vec_env(ENV, n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, learning_rate=lin(1e-3), clip_range=lin(0.2), seed=seed, device="cpu",
                verbose=0, **HP)
    t = time.perf_counter()
    model.learn(STEPS)
    wall = time.perf_counter() - t
    rets = evaluate_policy_fn(lambda o: model.predict(o, deterministic=True)[0], ENV, EVAL_EPISODES,
                              10_000 + seed)
    return {"lib": "sb3", "seed": seed, "wall_s": wall, "threads": torch.get_num_threads(),
            "eval_mean": sum(rets) / len(rets)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--one", choices=["deeprl", "sb3"])
    p.add_argument("--out", default="benchmarks/results/ppo_cartpole_vs_sb3.json")
    a = p.parse_args()
    if a.one:
        print(json.dumps((one_deeprl if a.one == "deeprl" else one_sb3)(a.seeds[0])))
        return
    rows = []
    for s in a.seeds:
        for lib in ("deeprl", "sb3"):
            r = run_child(__file__, ["--one", lib, "--seeds", str(s)])
            rows.append(r)
            print(json.dumps(r), flush=True)
    ours = [r for r in rows if r["lib"] == "deeprl"]
    sb3 = [r for r in rows if r["lib"] == "sb3"]
    result = {
        "machine": machine(), "command": "python " + " ".join(sys.argv), "env": ENV, "steps": STEPS,
        "runs": rows,
        "median_wall_s": {"deeprl": statistics.median(r["wall_s"] for r in ours),
                          "sb3": statistics.median(r["wall_s"] for r in sb3)},
        "speedup_per_seed": [round(b["wall_s"] / o["wall_s"], 2) for o, b in zip(ours, sb3)],
        "seeds_at_500": {"deeprl": sum(r["eval_mean"] >= 500 for r in ours),
                         "sb3": sum(r["eval_mean"] >= 500 for r in sb3)},
    }
    result["speedup_median"] = round(result["median_wall_s"]["sb3"] / result["median_wall_s"]["deeprl"], 2)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: result[k] for k in ("median_wall_s", "speedup_median", "speedup_per_seed", "seeds_at_500")}))


if __name__ == "__main__":
    main()
