"""Multimodal demonstrations (CS285 lecture 2, the "tree" example): BC with a Gaussian, a
mixture-of-Gaussians and an autoregressive head on 50 demonstrations of
``deeprl/ObstacleCourse-v0`` that pass the obstacle left or right, 3 seeds; 100 stochastic
rollouts each count goals, collisions and the side taken.

    python benchmarks/imitation_multimodal.py  ->  benchmarks/results/imitation_multimodal.json
"""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine  # noqa: E402

from deeprl import BC  # noqa: E402
from deeprl.envs.obstacle import OBSTACLE_ID, rollout_stats  # noqa: E402

HEADS = ("gaussian", "mixture", "autoregressive")
KW = dict(preset="none", total_steps=6000, demo_episodes=50, eval_episodes=0, checkpoint_every=0, torch_threads=1)


def main() -> int:
    rows = []
    for head in HEADS:
        for seed in (0, 1, 2):
            t = time.time()
            agent = BC(OBSTACLE_ID, seed=seed, policy_head=head, **KW)
            agent.learn()
            stats = rollout_stats(lambda obs, a=agent: a.predict(obs, deterministic=False), 100, seed=10_000)
            rows.append({"head": head, "seed": seed, **stats, "wall_s": round(time.time() - t, 1)})
            print(json.dumps(rows[-1]), flush=True)
    out = {"machine": machine(), "command": "python benchmarks/imitation_multimodal.py", "settings": KW,
           "results": rows}
    json.dump(out, open("benchmarks/results/imitation_multimodal.json", "w"), indent=2)
    for head in HEADS:
        rs = [r for r in rows if r["head"] == head]
        print(f"{head:15s} goal {[r['goal'] for r in rs]} collided {[r['collided'] for r in rs]} "
              f"left/right {[(r['left'], r['right']) for r in rs]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
