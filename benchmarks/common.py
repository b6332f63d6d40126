"""Helpers shared by the benchmark scripts: machine description and a library-neutral evaluator."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

import gymnasium as gym


def machine() -> dict:
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"), "platform": platform.platform()}


def evaluate_policy_fn(predict, env_id: str, episodes: int, seed: int) -> list[float]:
    """Deterministic returns of ``predict(obs) -> action`` over ``episodes`` seeded episodes."""
    env = gym.make(env_id)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(predict(obs))
            total += float(r)
            done = term or trunc
        returns.append(total)
    env.close()
    return returns


def run_child(script: str, args: list[str]) -> dict:
    """Run one measurement in a fresh interpreter (so thread settings and caches don't leak)."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
