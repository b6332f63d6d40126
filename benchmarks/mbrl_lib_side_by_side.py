"""deeprl against mbrl-lib 0.2.0 (PyPI ``mbrl``), side by side: the same env, config and env-step
budget, seed by seed in one alternating run on this machine (mbrl-lib, then deeprl, then the next
seed), every run in a fresh process with the same torch thread count.

- ``pets``: PETS on mbrl-lib's continuous cart-pole with mbrl-lib's published config
  (``overrides/pets_cartpole.yaml``); deeprl runs ``deeprl/ContinuousCartPole-v0`` with the preset
  that copies it (``configs/pets/deeprl_ContinuousCartPole-v0.yaml``), in float32 and, as a
  separate row, with ``plan_precision=bfloat16``.
- ``mbpo``: MBPO on InvertedPendulum with mbrl-lib's ``overrides/mbpo_inv_pendulum.yaml`` (its 5000
  initial exploration steps, then ``--steps`` more); deeprl runs the same ``InvertedPendulum-v4``
  (``--mbpo-env`` to change it) with that config mapped onto
  :class:`~deeprl.algos.model_based.mbpo.MBPOConfig` (:data:`MBPO_AS_MBRL_LIB`). v4 pays 1 on every
  step, so the learned reward is a constant; v5 pays 0 on the terminating step, which the learned
  reward must then predict from (s, a).

Returns are the training episodes' (both libraries act with the same policy they train: the CEM
mean for PETS; for MBPO mbrl-lib's own evaluation episodes are compared with deeprl's evaluations at
the same env steps). Wall-clock is the whole run, divided by its env steps.

    python benchmarks/mbrl_lib_side_by_side.py pets --steps 400 --seeds 0 1 2
    python benchmarks/mbrl_lib_side_by_side.py mbpo --steps 5000 --seeds 0 1 2

mbrl-lib's venv: ``benchmarks/peer_venvs.sh mbrl``. Results: ``benchmarks/results/mbrl_lib_ALGO.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_PY = os.path.join(HERE, ".venv-mbrl", "bin", "python")

# mbrl-lib's mbpo_inv_pendulum.yaml + algorithm/mbpo.yaml, in deeprl's names. mbrl-lib rolls out
# effective_model_rollouts_per_step (400) x freq_train_model (250) start states per fit, keeps one
# epoch of imagined data and trains SAC only on it (real_data_ratio 0); its 5000 initial steps use
# the untrained SAC policy, deeprl's learning_starts uniform random actions.
MBPO_AS_MBRL_LIB = ["learning_starts=5000", "gradient_steps=10", "real_ratio=0.0", "rollout_batch_size=100000",
                    "rollout_length=1", "model_train_freq=250", "model_retain_steps=250", "learn_reward=true",
                    "ensemble_size=7", "num_model_elites=5", "model_hidden_sizes=[200,200,200,200]",
                    "model_learning_rate=0.001", "model_weight_decay=0.00001", "model_batch_size=256",
                    "model_val_fraction=0.2", "model_patience=5", "model_max_epochs=200", "alpha=0.2",
                    "target_entropy=-1", "learning_rate=0.0003", "batch_size=256", "gamma=0.99", "tau=0.005",
                    "hidden_sizes=[256,256]", "eval_every=250", "eval_episodes=1"]


def _rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def _episodes(run_dir, rows, after: int) -> list[tuple[int, float]]:
    """(env step, return) of the training episodes that ended after env step ``after``: the run's
    ``episodes.csv``, or for runs written before it existed, rebuilt from the log's running mean
    over the last 20 episodes: while at most 20 have ended, the episodes that ended between two
    rows returned ``(n1 m1 - n0 m0) / (n1 - n0)`` on average."""
    path = os.path.join(run_dir, "episodes.csv")
    if os.path.exists(path):
        with open(path, newline="") as f:
            return [(int(e["env_step"]), float(e["return"])) for e in csv.DictReader(f) if int(e["env_step"]) > after]
    out, n0, m0 = [], 0, 0.0
    for r in rows:
        if not r.get("train/episode_return_mean"):
            continue
        n1, m1 = int(float(r["train/episodes"])), float(r["train/episode_return_mean"])
        if n1 > 20:
            raise ValueError("more than 20 training episodes: the running mean no longer gives each return")
        step = int(float(r["time/env_steps"]))
        if n1 > n0 and step > after:
            out.append((step, (n1 * m1 - n0 * m0) / (n1 - n0)))
        n0, m0 = n1, m1
    return out


def run_deeprl(algo: str, steps: int, seed: int, threads: int, root: str, tag: str, extra: list[str],
               reuse: bool = False, mbpo_env: str = "InvertedPendulum-v4") -> dict:
    run_dir = os.path.join(root, f"{algo}_{tag}_seed{seed}")
    done = reuse and os.path.exists(os.path.join(run_dir, "summary.json"))
    if not done:
        shutil.rmtree(run_dir, ignore_errors=True)
    if algo == "pets":
        env, total, args = "deeprl/ContinuousCartPole-v0", 200 + steps, ["--preset", "auto", "eval_every=0"]
    else:
        # mbrl-lib sizes its replay buffer (the model's dataset and the rollouts' start states) by
        # num_steps, the --steps after exploration: D keeps the newest `steps` real transitions
        env, total, args = mbpo_env, 5000 + steps, ["--preset", "none", *MBPO_AS_MBRL_LIB, f"dataset_size={steps}"]
    cmd = [sys.executable, "-m", "deeprl", "train", algo, "--env", env, "--seed", str(seed), "--steps", str(total),
           "--run-dir", run_dir, "--no-progress", *args, "checkpoint_every=0", f"torch_threads={threads}", *extra]
    t = time.perf_counter()
    out = None if done else subprocess.run(cmd, capture_output=True, text=True)
    wall = None if done else time.perf_counter() - t
    if out is not None and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    s = json.load(open(os.path.join(run_dir, "summary.json")))
    rows = _rows(run_dir)
    # the training loop's clock, without the final evaluation (whose row has no wall time)
    train_wall = float([r for r in rows if r.get("time/wall_s")][-1]["time/wall_s"])
    episodes = _episodes(run_dir, rows, after=200) if algo == "pets" else [
        (int(float(r["time/env_steps"])), float(r["eval/return_mean"])) for r in rows if r.get("eval/return_mean")]
    return {"library": "deeprl", "tag": tag, "algo": algo, "env": env, "seed": seed, "env_steps": s["env_steps"],
            "wall_s": train_wall, "process_wall_s": wall, "wall_per_env_step_s": train_wall / s["env_steps"],
            "episodes": episodes,
            "plan_s_per_action": s.get("time_per_action_s"), "threads": threads, "command": " ".join(cmd[1:])}


def run_mbrl_lib(algo: str, steps: int, seed: int, threads: int, root: str, reuse: bool = False) -> dict:
    out_file = os.path.join(root, f"{algo}_mbrl_lib_seed{seed}.json")
    cmd = [PEER_PY, os.path.join(HERE, "peers", "mbrl_lib_run.py"), algo, "--steps", str(steps), "--seed", str(seed),
           "--threads", str(threads), "--out", out_file]
    done = reuse and os.path.exists(out_file)
    t = time.perf_counter()
    out = None if done else subprocess.run(cmd, capture_output=True, text=True)
    wall = None if done else time.perf_counter() - t
    if out is not None and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    r = json.load(open(out_file))
    r.pop("config", None)
    r.update(tag="mbrl-lib", process_wall_s=wall, command=" ".join(cmd))
    return r


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("algo", choices=("pets", "mbpo"))
    p.add_argument("--steps", type=int, required=True, help="env steps after the initial random/exploration ones")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--deeprl", nargs="+", default=None, metavar="TAG=OVERRIDES",
                   help="deeprl variants, e.g. fp32= bf16=plan_precision=bfloat16 (default: pets both, mbpo fp32)")
    p.add_argument("--mbpo-env", default="InvertedPendulum-v4", help="deeprl's env for mbpo (mbrl-lib runs v4)")
    p.add_argument("--root", default="benchmarks/results/runs/mbrl_lib_side_by_side")
    p.add_argument("--out", default=None)
    p.add_argument("--reuse", action="store_true", help="read the runs already under --root instead of rerunning "
                   "them (an interrupted comparison goes on where it stopped)")
    a = p.parse_args()
    if not os.path.exists(PEER_PY):
        p.error(f"{PEER_PY} not found: run benchmarks/peer_venvs.sh mbrl first")
    variants = a.deeprl or (["fp32=", "bf16=plan_precision=bfloat16"] if a.algo == "pets" else ["fp32="])
    variants = [(v.split("=", 1)[0], [x for x in v.split("=", 1)[1].split(",") if x]) for v in variants]
    os.makedirs(a.root, exist_ok=True)
    out_path = a.out or f"benchmarks/results/mbrl_lib_{a.algo}.json"
    results = []
    for seed in a.seeds:  # alternating: each seed's runs back to back, the peer first
        results.append(run_mbrl_lib(a.algo, a.steps, seed, a.threads, a.root, a.reuse))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "episodes"}), flush=True)
        for tag, extra in variants:
            results.append(run_deeprl(a.algo, a.steps, seed, a.threads, a.root, tag, extra, a.reuse, a.mbpo_env))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "episodes"}), flush=True)
        json.dump({"machine": machine(), "command": "python " + " ".join(sys.argv), "results": results},
                  open(out_path, "w"), indent=1)
    for tag in ["mbrl-lib"] + [t for t, _ in variants]:
        rs = [r for r in results if r["tag"] == tag]
        if not rs:
            continue
        per = sum(r["wall_per_env_step_s"] for r in rs) / len(rs)
        last = [r["episodes"][-1][1] if r["episodes"] else float("nan") for r in rs]
        print(f"{tag:10s} wall/env step {per * 1000:8.1f} ms   last return per seed "
              f"{', '.join(f'{x:.1f}' for x in last)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
