"""One SAC gradient step, deeprl against the SAC inside mbrl-lib (pranz24's ``pytorch_sac``, which
mbrl-lib's MBPO trains), side by side: the same network sizes, batch and hyperparameters, each in a
fresh process of its own interpreter, alternating (deeprl, mbrl-lib, deeprl, ...).

What is timed is ``--updates`` gradient steps, each including the minibatch draw from a buffer of
``--buffer`` random transitions (deeprl: :class:`~deeprl.algos.model_based.mbpo.ModelBuffer`, what
MBPO's SAC reads; mbrl-lib: its ``ReplayBuffer``), after ``--warmup`` untimed steps. MBPO on
InvertedPendulum runs 10 of these per env step: this is the larger half of its time.

    python benchmarks/sac_update_speed.py --threads 1 --repeats 3

Results: ``benchmarks/results/sac_update_speed.json`` (``--out``). mbrl-lib's venv:
``benchmarks/peer_venvs.sh mbrl``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_PY = os.path.join(HERE, ".venv-mbrl", "bin", "python")

DEEPRL = r"""
import json, sys, time
import numpy as np, torch
a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
from gymnasium import spaces
from deeprl.algos.offpolicy.sac import SAC, SACConfig
from deeprl.algos.model_based.mbpo import ModelBuffer
from deeprl.core import config
from deeprl.data.replay import ReplayBatch
torch.manual_seed(0)
o, d = a["obs_dim"], a["act_dim"]
obs_space = spaces.Box(-np.inf, np.inf, (o,), np.float32)
act_space = spaces.Box(-1.0, 1.0, (d,), np.float32)
run = config.RunConfig(env_id="InvertedPendulum-v4", seed=0, torch_threads=a["threads"],
                       matmul_precision=a["precision"])
cfg = SACConfig(batch_size=a["batch"], alpha=0.2, target_entropy=-float(d), hidden_sizes=(a["hidden"], a["hidden"]))
sac = SAC.from_config(run, cfg, obs_space, act_space)
buf = ModelBuffer(o, d, a["buffer"])
n = a["buffer"]
buf.add(torch.randn(n, o), torch.rand(n, d) * 2 - 1, torch.randn(n), torch.full((n,), 0.99), torch.randn(n, o))
rng = np.random.default_rng(0)
def step():
    s, act, r, disc, s2 = buf.sample(a["batch"], rng)
    sac.update(ReplayBatch(s, act, r, disc, s2, None, None), 0.0)
for _ in range(a["warmup"]):
    step()
t = time.perf_counter()
for _ in range(a["updates"]):
    step()
print(json.dumps({"ms_per_update": 1000 * (time.perf_counter() - t) / a["updates"]}))
"""

PRANZ24 = r"""
import json, sys, time, types
import numpy as np, torch
a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
import gymnasium as gym
from mbrl.third_party.pytorch_sac_pranz24.sac import SAC
from mbrl.util.replay_buffer import ReplayBuffer
torch.manual_seed(0)
o, d = a["obs_dim"], a["act_dim"]
args = types.SimpleNamespace(gamma=0.99, tau=0.005, alpha=0.2, policy="Gaussian", target_update_interval=1,
                             automatic_entropy_tuning=True, target_entropy=-float(d), hidden_size=a["hidden"],
                             device="cpu", lr=3e-4)
sac = SAC(o, gym.spaces.Box(-1.0, 1.0, (d,), np.float32), args)
n = a["buffer"]
buf = ReplayBuffer(n, (o,), (d,), rng=np.random.default_rng(0))
buf.add_batch(np.random.randn(n, o).astype(np.float32), (np.random.rand(n, d) * 2 - 1).astype(np.float32),
              np.random.randn(n, o).astype(np.float32), np.random.randn(n).astype(np.float32),
              np.zeros(n, bool), np.zeros(n, bool))
def step(i):
    sac.update_parameters(buf, a["batch"], i, reverse_mask=True)
for i in range(a["warmup"]):
    step(i)
t = time.perf_counter()
for i in range(a["updates"]):
    step(i)
print(json.dumps({"ms_per_update": 1000 * (time.perf_counter() - t) / a["updates"]}))
"""


def run(py: str, code: str, args: dict, env=None) -> float:
    out = subprocess.run([py, "-c", code, json.dumps(args)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])["ms_per_update"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--updates", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--obs-dim", type=int, default=4, help="InvertedPendulum: 4")
    p.add_argument("--act-dim", type=int, default=1)
    p.add_argument("--buffer", type=int, default=100_000)
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16"), help="deeprl's matmuls")
    p.add_argument("--deeprl-tree", default=os.path.dirname(HERE), help="checkout put first on PYTHONPATH")
    p.add_argument("--out", default=os.path.join(HERE, "results", "sac_update_speed.json"))
    a = p.parse_args()
    if not os.path.exists(PEER_PY):
        p.error(f"mbrl-lib's venv is missing ({PEER_PY}): run benchmarks/peer_venvs.sh mbrl")
    args = {"threads": a.threads, "updates": a.updates, "warmup": a.warmup, "batch": a.batch, "hidden": a.hidden,
            "obs_dim": a.obs_dim, "act_dim": a.act_dim, "buffer": a.buffer, "precision": a.precision}
    env = {**os.environ, "PYTHONPATH": os.path.abspath(a.deeprl_tree), "OMP_NUM_THREADS": str(a.threads)}
    res = {"deeprl": [], "mbrl-lib": []}
    for r in range(a.repeats):
        res["deeprl"].append(run(sys.executable, DEEPRL, args, env))
        res["mbrl-lib"].append(run(PEER_PY, PRANZ24, args, {**os.environ, "OMP_NUM_THREADS": str(a.threads)}))
        print(f"repeat {r}: deeprl {res['deeprl'][-1]:.2f} ms, mbrl-lib {res['mbrl-lib'][-1]:.2f} ms", flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    summary = {"args": args, "ms_per_update": res, "median_ms": med,
               "speedup": med["mbrl-lib"] / med["deeprl"], "command": "python " + " ".join(sys.argv)}
    sys.path.insert(0, HERE)
    from common import machine
    summary["machine"] = machine()
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump(summary, open(a.out, "w"), indent=2)
    print(f"median: deeprl {med['deeprl']:.2f} ms, mbrl-lib {med['mbrl-lib']:.2f} ms per update "
          f"(deeprl {summary['speedup']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
