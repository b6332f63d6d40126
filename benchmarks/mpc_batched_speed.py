"""Time per action of MPC on Pendulum-v1 (default preset: 30-step horizon, 200 samples, 4
iterations) for B parallel states, planned in one torch batch (``batched=true``, the default)
or row by row with the NumPy planners (``batched=false``). Alternating, one torch thread.

    python benchmarks/mpc_batched_speed.py --batch 1 8 32 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from deeprl.algos.planning.mpc import MPC


def per_action(planner: str, batched: bool, B: int, steps: int) -> float:
    agent = MPC("Pendulum-v1", seed=0, planner=planner, batched=batched, torch_threads=1)
    th = np.linspace(-np.pi, np.pi, B, endpoint=False)
    obs = np.stack([np.cos(th), np.sin(th), np.zeros(B)], 1).astype(np.float32)
    agent.predict(obs)
    t = time.perf_counter()
    for _ in range(steps):
        agent.predict(obs)
    return (time.perf_counter() - t) / (steps * B)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--planners", nargs="+", default=["cem", "mppi", "random"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for B in args.batch:
        steps = max(2, 64 // B)
        for planner in args.planners:
            times = {True: [], False: []}
            for _ in range(args.repeats):
                for batched in (False, True):
                    times[batched].append(per_action(planner, batched, B, steps))
            row = {"B": B, "planner": planner, "rows_ms": 1e3 * min(times[False]), "batched_ms": 1e3 * min(times[True])}
            row["speedup"] = row["rows_ms"] / row["batched_ms"]
            rows.append(row)
            print(f"B={B:3d} {planner:6s}: rows {row['rows_ms']:.2f} ms/action, batched {row['batched_ms']:.2f} "
                  f"ms/action, {row['speedup']:.1f}x", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
