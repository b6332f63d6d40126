"""Fitting a dynamics ensemble in float32 and with bfloat16 matmuls (``fit_dynamics(precision=)``,
the run setting ``matmul_precision``): seconds per epoch and the validation errors reached, on the
same random InvertedPendulum-v5 transitions, the same seed and MBPO's model (7 Gaussian members of
4 x 200, learned reward), alternating the two precisions.

    python benchmarks/model_fit_precision.py [--rows 5000] [--epochs 20] [--reps 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine  # noqa: E402

from deeprl.models.ensemble import DynamicsEnsemble  # noqa: E402
from deeprl.models.training import fit_dynamics  # noqa: E402
from deeprl.nn.optim import Adam  # noqa: E402


def random_transitions(n: int, seed: int = 0):
    env = gym.make("InvertedPendulum-v5")
    rng = np.random.default_rng(seed)
    rows = []
    obs, _ = env.reset(seed=seed)
    while len(rows) < n:
        a = rng.uniform(-3, 3, 1).astype(np.float32)
        nxt, r, term, trunc, _ = env.step(a)
        rows.append((obs, a, nxt, r))
        obs = env.reset()[0] if term or trunc else nxt
    s, a, s2, r = (torch.as_tensor(np.asarray(x), dtype=torch.float32) for x in zip(*rows))
    return s, a, s2, r


def fit_once(data, precision: str, epochs: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = DynamicsEnsemble(4, 1, members=7, hidden=(200, 200, 200, 200), learn_reward=True)
    opt = Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    t = time.perf_counter()
    fit = fit_dynamics(model, opt, *data, rng=np.random.default_rng(seed), batch_size=256, max_epochs=epochs,
                       patience=10**6, val_fraction=0.2, num_elites=5, precision=precision)
    wall = time.perf_counter() - t
    return {"precision": precision, "epochs": fit.epochs, "s_per_epoch": wall / fit.epochs,
            "val_mse": float(np.mean(fit.val_mse)), "val_nll": float(np.mean(fit.val_nll))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/model_fit_precision.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = random_transitions(a.rows)
    results = []
    for rep in range(a.reps):
        for precision in ("float32", "bfloat16"):
            results.append(fit_once(data, precision, a.epochs, seed=rep))
            print(json.dumps(results[-1]), flush=True)
    json.dump({"machine": machine(), "command": "python " + " ".join(sys.argv), "results": results},
              open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
