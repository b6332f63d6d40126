"""Check an MBPO run's imagined transitions against MuJoCo: load a checkpoint of an
InvertedPendulum-v5 run (whose observation is the full state qpos, qvel), set the simulator to
imagined states, apply the imagined actions and compare the env's next state, reward and
termination with the model buffer's.

    python benchmarks/mbpo_model_check.py RUN_DIR/checkpoints/latest.pt [--samples 500]
"""
from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

from deeprl.algos import ALGORITHMS


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--samples", type=int, default=500)
    a = ap.parse_args()
    agent = ALGORITHMS["mbpo"].load(a.checkpoint)
    if agent.run.env_id != "InvertedPendulum-v5":
        raise SystemExit(f"{a.checkpoint}: an {agent.run.env_id} run; this check needs InvertedPendulum-v5")
    mb = agent.model_buffer
    env = gym.make("InvertedPendulum-v5").unwrapped
    env.reset(seed=0)
    errs, same_term, same_reward = [], [], []
    for i in np.random.default_rng(0).integers(0, len(mb), a.samples):
        s, act, s2 = mb.obs[i].double().numpy(), mb.actions[i].numpy(), mb.next_obs[i].numpy()
        env.set_state(s[:2], s[2:])
        o, r, term, _, _ = env.step(act)
        errs.append(float(((o - s2) ** 2).mean()))
        same_term.append((float(mb.discounts[i]) == 0.0) == term)
        same_reward.append(float(mb.rewards[i]) == r)
    errs = np.asarray(errs)
    print(f"{a.samples} imagined transitions of {len(mb)}: next-state MSE mean {errs.mean():.4g}, median "
          f"{np.median(errs):.4g}, 95th percentile {np.percentile(errs, 95):.4g}; terminations agree "
          f"{np.mean(same_term):.3f}, rewards agree {np.mean(same_reward):.3f}")


if __name__ == "__main__":
    main()
