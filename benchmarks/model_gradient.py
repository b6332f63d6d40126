"""Pathwise (backpropagation through the model) vs likelihood-ratio policy gradients, as CS285
lecture 12 compares them: "policy gradient might be more stable (if enough samples are used)
because it does not require multiplying many Jacobians".

1. ``spread``: fit a 3-member ensemble to 5000 random Pendulum-v1 transitions, take a fixed
   (untrained) tanh-Gaussian policy, and for each horizon H estimate dJ/dtheta of
   J = E[sum_{t<H} gamma^t r_t] from ``--batches`` independent batches of 256 imagined start
   states, with each estimator. Reports the mean gradient norm and the relative spread
   ``mean_k ||g_k - g_mean|| / ||g_mean||`` (how much one batch's gradient disagrees with the
   average: the noise a single update sees).
2. ``learning``: ``model_backprop`` with each gradient on Pendulum-v1 (3000 env steps, seeds 0-2).

    python benchmarks/model_gradient.py spread learning --out benchmarks/results/model_gradient.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine  # noqa: E402

LEARN = dict(initial_steps=1000, steps_per_iteration=200, horizon=10, policy_updates=100, ensemble_size=3,
             num_model_elites=3, model_hidden_sizes=(64, 64), model_max_epochs=20, gamma=0.95, eval_every=0,
             eval_episodes=0, checkpoint_every=0, torch_threads=1)


def spread(horizons, batches) -> list[dict]:
    from deeprl.algos import ALGORITHMS
    from deeprl.algos.model_based.model_backprop import imagine, policy_objective

    agent = ALGORITHMS["model_backprop"]("Pendulum-v1", seed=0, preset="none", **{**LEARN, "policy_updates": 1})
    agent.learn(5000)  # the model of 5000 random steps (the policy took one update: nearly untrained)
    params = [p for p in agent.actor.parameters()]
    zero_v = lambda x: torch.zeros(x.shape[0])  # noqa: E731
    rows = []
    agent.model.requires_grad_(False)
    for H in horizons:
        for pathwise in (True, False):
            grads, t0 = [], time.perf_counter()
            for k in range(batches):
                s0 = agent.data.obs[torch.as_tensor(np.random.default_rng(k).integers(0, len(agent.data), 256))]
                torch.manual_seed(1000 + k)
                states, rewards, logps, alive = imagine(agent.model, agent.reward_fn, None, agent.actor, s0, H,
                                                        agent.elites, torch.Generator().manual_seed(k), pathwise)
                obj = policy_objective(states, rewards, logps, alive, torch.zeros(256), zero_v, 0.95, pathwise)
                g = torch.autograd.grad(obj, params)
                grads.append(torch.cat([x.reshape(-1) for x in g]))
            G = torch.stack(grads)
            mean = G.mean(0)
            rel = float((G - mean).norm(dim=1).mean() / mean.norm())
            rows.append({"horizon": H, "gradient": "pathwise" if pathwise else "likelihood_ratio",
                         "mean_norm": float(G.norm(dim=1).mean()), "relative_spread": rel,
                         "ms_per_gradient": (time.perf_counter() - t0) / batches * 1000})
            print(rows[-1], flush=True)
    return rows


def learning(seeds) -> list[dict]:
    from deeprl.algos import ALGORITHMS
    from deeprl.data.evaluate import evaluate

    rows = []
    for gradient in ("pathwise", "likelihood_ratio"):
        for seed in seeds:
            agent = ALGORITHMS["model_backprop"]("Pendulum-v1", seed=seed, preset="none", gradient=gradient, **LEARN)
            t0 = time.perf_counter()
            agent.learn(3000)
            ev = evaluate(agent, 5, seed=10_000 + seed)
            rows.append({"gradient": gradient, "seed": seed, "eval_return_mean": ev["eval/return_mean"],
                         "train_s": round(time.perf_counter() - t0, 1)})
            print(rows[-1], flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="+", choices=("spread", "learning"))
    ap.add_argument("--horizons", type=int, nargs="+", default=[1, 3, 10, 30, 60])
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out")
    a = ap.parse_args()
    out = {"machine": machine(), "command": "python " + " ".join(sys.argv)}
    if "spread" in a.what:
        out["spread"] = spread(a.horizons, a.batches)
    if "learning" in a.what:
        out["learning"] = learning(a.seeds)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
