"""One mbrl-lib run with its published example config, for benchmarks/mbrl_lib_side_by_side.py.
Runs in mbrl-lib's own virtualenv (benchmarks/peer_venvs.sh mbrl), never imports deeprl:

    benchmarks/.venv-mbrl/bin/python benchmarks/peers/mbrl_lib_run.py pets --steps 800 --seed 0 --out F.json

``pets``: PETS on mbrl-lib's cartpole_continuous (overrides/pets_cartpole.yaml, algorithm/pets.yaml,
dynamics_model/gaussian_mlp_ensemble.yaml, action_optimizer/cem.yaml). ``mbpo``: MBPO on
InvertedPendulum (overrides/mbpo_inv_pendulum.yaml, algorithm/mbpo.yaml). ``--steps`` is mbrl-lib's
``num_steps`` (env steps after its initial exploration, which it does not count). Writes the
per-episode returns from mbrl-lib's results.csv, the wall-clock and the planner's time per action.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time

import mbrl
import numpy as np
import omegaconf
import torch

CONF = os.path.join(os.path.dirname(mbrl.__file__), "examples", "conf")
# action_optimizer/cem.yaml is missing from the PyPI wheel: this is the repository's file, as data
CEM = {"_target_": "mbrl.planning.CEMOptimizer", "num_iterations": "${overrides.cem_num_iters}",
       "elite_ratio": "${overrides.cem_elite_ratio}", "population_size": "${overrides.cem_population_size}",
       "alpha": "${overrides.cem_alpha}", "lower_bound": "???", "upper_bound": "???",
       "return_mean_elites": True, "device": "${device}", "clipped_normal": "${overrides.cem_clipped_normal}"}


def _yaml(*parts):
    # OmegaConf's loader, as hydra's: PyYAML alone reads "3e-5" as a string
    return omegaconf.OmegaConf.to_container(omegaconf.OmegaConf.load(os.path.join(CONF, *parts)))


def config(algo: str, steps: int, seed: int) -> omegaconf.DictConfig:
    overrides = _yaml("overrides", "pets_cartpole.yaml" if algo == "pets" else "mbpo_inv_pendulum.yaml")
    overrides["num_steps"] = steps
    if algo == "mbpo":  # gymnasium 0.26's InvertedPendulum-v4 (deeprl uses v5: the same model and task)
        overrides["env"] = "gym___InvertedPendulum-v4"
    cfg = {"seed": seed, "device": "cpu", "log_frequency_agent": 1000, "save_video": False, "debug_mode": False,
           "algorithm": _yaml("algorithm", f"{algo}.yaml"), "dynamics_model": _yaml("dynamics_model",
                                                                                   "gaussian_mlp_ensemble.yaml"),
           "overrides": overrides, "action_optimizer": CEM}
    return omegaconf.OmegaConf.create(cfg)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("algo", choices=("pets", "mbpo"))
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    import mbrl.algorithms.mbpo
    import mbrl.algorithms.pets
    import mbrl.planning
    import mbrl.util.env

    cfg = config(a.algo, a.steps, a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    env, term_fn, reward_fn = mbrl.util.env.EnvHandler.make_env(cfg)
    env.reset(seed=a.seed)  # mbrl-lib's scripts seed the env's generator this way
    timing = {"actions": 0, "seconds": 0.0}
    act = mbrl.planning.TrajectoryOptimizerAgent.act

    def timed_act(self, *args, **kwargs):
        t = time.perf_counter()
        out = act(self, *args, **kwargs)
        timing["actions"] += 1
        timing["seconds"] += time.perf_counter() - t
        return out

    mbrl.planning.TrajectoryOptimizerAgent.act = timed_act
    work = tempfile.mkdtemp(prefix=f"mbrl_lib_{a.algo}_")
    t0 = time.perf_counter()
    if a.algo == "pets":
        best = mbrl.algorithms.pets.train(env, term_fn, reward_fn, cfg, silent=False, work_dir=work)
        initial = cfg.overrides.trial_length
    else:
        test_env, *_ = mbrl.util.env.EnvHandler.make_env(cfg)
        test_env.reset(seed=a.seed + 1)
        best = mbrl.algorithms.mbpo.train(env, test_env, term_fn, cfg, silent=False, work_dir=work)
        initial = cfg.algorithm.initial_exploration_steps
    wall = time.perf_counter() - t0
    with open(os.path.join(work, "results.csv"), newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    # pets finishes the episode it is in when num_steps is reached: count the steps it took
    steps = max([initial + a.steps] + [int(r["env_step"]) + initial for r in rows])
    res = {"library": "mbrl-lib", "version": mbrl.__version__, "algo": a.algo, "env": cfg.overrides.env,
           "seed": a.seed, "env_steps": steps, "wall_s": wall,
           "wall_per_env_step_s": wall / steps, "best": float(best),
           "episodes": [(int(r["env_step"]) + initial, r["episode_reward"]) for r in rows],
           "plan_s_per_action": timing["seconds"] / max(1, timing["actions"]), "threads": a.threads,
           "config": omegaconf.OmegaConf.to_container(cfg, resolve=False)}
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: v for k, v in res.items() if k not in ("config", "episodes")}))


if __name__ == "__main__":
    main()
