"""MBPO's imagined transitions against MuJoCo, on InvertedPendulum (whose observation is the
full state qpos, qvel, so the simulator can be set to any imagined state).

``check``: load a checkpoint of a run and compare a sample of its model buffer (s, a, r, s',
terminated) with what MuJoCo does from the same (s, a).

``train``: run MBPO with mbrl-lib's InvertedPendulum config (``MBPO_AS_MBRL_LIB`` of
mbrl_lib_side_by_side.py) and, at every round of branched rollouts, compare the imagined steps
with MuJoCo's: the sampled next states' and the elites' mean prediction's squared error per
dimension, the termination agreement, and the reward error. ``--dynamics oracle`` replaces the
learned model by MuJoCo itself (the same rollouts, exact next states, rewards and terminations):
what SAC on branched rollouts does with a perfect model.

    python benchmarks/mbpo_model_check.py check RUN_DIR/checkpoints/latest.pt [--samples 500]
    python benchmarks/mbpo_model_check.py train --dynamics learned|oracle --seed 0 --steps 9000 \\
        [--env InvertedPendulum-v5] [key=value ...] --out LOG.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import gymnasium as gym
import numpy as np
import torch

from deeprl.algos import ALGORITHMS
from deeprl.core.config import parse_overrides

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mbrl_lib_side_by_side import MBPO_AS_MBRL_LIB  # noqa: E402

ENVS = ("InvertedPendulum-v4", "InvertedPendulum-v5")


class MuJoCoStep:
    """MuJoCo's step from given observations (qpos, qvel) and actions, row by row."""

    def __init__(self, env_id: str):
        self.env = gym.make(env_id).unwrapped
        self.env.reset(seed=0)
        self.v4 = env_id.endswith("v4")  # v4 pays 1 on every step, v5 0 on the terminating one

    def __call__(self, s: torch.Tensor, a: torch.Tensor):
        s_np, a_np = s.double().numpy(), a.double().numpy()
        out = np.empty_like(s_np)
        for i in range(len(s_np)):
            self.env.set_state(s_np[i, :2], s_np[i, 2:])
            out[i] = self.env.step(a_np[i])[0]
        nxt = torch.as_tensor(out, dtype=s.dtype)
        term = ~torch.isfinite(nxt).all(-1) | (nxt[:, 1].abs() > 0.2)
        return nxt, (torch.ones_like(nxt[:, 0]) if self.v4 else (~term).to(s.dtype)), term


def check(a) -> None:
    agent = ALGORITHMS["mbpo"].load(a.checkpoint)
    if agent.run.env_id not in ENVS:
        raise SystemExit(f"{a.checkpoint}: an {agent.run.env_id} run; this check needs one of {', '.join(ENVS)}")
    mb, true_step = agent.model_buffer, MuJoCoStep(agent.run.env_id)
    idx = torch.as_tensor(np.random.default_rng(0).integers(0, len(mb), a.samples))
    nxt, rew, term = true_step(mb.obs[idx], mb.actions[idx])
    errs = (nxt - mb.next_obs[idx]).pow(2).mean(-1).numpy()
    print(f"{a.samples} imagined transitions of {len(mb)}: next-state MSE mean {errs.mean():.4g}, median "
          f"{np.median(errs):.4g}, 95th percentile {np.percentile(errs, 95):.4g}; terminations agree "
          f"{float(((mb.discounts[idx] == 0) == term).float().mean()):.3f}, rewards agree "
          f"{float((mb.rewards[idx] == rew).float().mean()):.3f}")


class Compared:
    """The agent's LearnedModelEnv, with every step also taken by MuJoCo (on up to ``rows`` rows)
    and the differences written to ``log``; ``oracle`` hands MuJoCo's answer to the agent instead."""

    def __init__(self, inner, agent, true_step, log, oracle: bool, rows: int = 5000):
        self.inner, self.agent, self.true_step, self.log, self.oracle, self.rows = \
            inner, agent, true_step, log, oracle, rows

    def __getattr__(self, k):
        return getattr(self.inner, k)

    def step(self, s, a):
        if self.oracle:
            return self.true_step(s, a)
        nxt, rew, term = self.inner.step(s, a)
        n = min(len(s), self.rows)
        t_nxt, t_rew, t_term = self.true_step(s[:n], a[:n])
        prop, self.inner.propagation = self.inner.propagation, "mean"
        m_nxt, m_rew, _ = self.inner.step(s[:n], a[:n])  # the elites' mean prediction, no noise
        self.inner.propagation = prop
        row = {"env_steps": self.agent.train_state["env_steps"], "rows": len(s),
               "sampled_sq_err_per_dim": (nxt[:n] - t_nxt).pow(2).mean(0).tolist(),
               "mean_sq_err_per_dim": (m_nxt - t_nxt).pow(2).mean(0).tolist(),
               "termination_agreement": float((term[:n] == t_term).float().mean()),
               "termination_rate": [float(term[:n].float().mean()), float(t_term.float().mean())],
               "reward_abs_err": float((rew[:n] - t_rew).abs().mean()),
               "mean_reward_abs_err": float((m_rew - t_rew).abs().mean()),
               "reward_mean": [float(rew[:n].mean()), float(t_rew.mean())]}
        self.log.write(json.dumps(row) + "\n")
        self.log.flush()
        return nxt, rew, term


def train(a) -> None:
    overrides = parse_overrides(MBPO_AS_MBRL_LIB + ["eval_every=500", "eval_episodes=3", "checkpoint_every=0",
                                                    f"torch_threads={a.threads}"] + a.overrides)
    agent = ALGORITHMS["mbpo"](a.env, seed=a.seed, preset="none", **overrides)
    with open(a.out, "w") as log:
        agent.model_env = Compared(agent.model_env, agent, MuJoCoStep(a.env), log, a.dynamics == "oracle")
        agent.learn(a.steps, run_dir=a.run_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("check")
    c.add_argument("checkpoint")
    c.add_argument("--samples", type=int, default=500)
    t = sub.add_parser("train")
    t.add_argument("--dynamics", choices=("learned", "oracle"), default="learned")
    t.add_argument("--env", choices=ENVS, default="InvertedPendulum-v5")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--steps", type=int, default=9000)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--run-dir", default=None)
    t.add_argument("--out", required=True, help="one JSON line per round of branched rollouts")
    t.add_argument("overrides", nargs="*", help="key=value over mbrl-lib's config")
    a = ap.parse_args()
    check(a) if a.mode == "check" else train(a)


if __name__ == "__main__":
    main()
