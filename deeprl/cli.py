"""``deeprl train|eval|plot|list``: the command-line front end of the same objects the
Python API uses. Every user error ends in one line on stderr and a non-zero exit."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from deeprl.core.errors import CheckpointError, ConfigError, DeeprlError

USAGE = """deeprl train ALGO --env ENV_ID [--seed N | --seeds N ...] [--steps N] [--run-dir DIR]
                   [--preset NAME_OR_YAML] [key=value ...]
       deeprl train --resume RUN_DIR [--steps N]   (N: a larger budget; a finished run trains on)
       deeprl eval RUN_DIR [--episodes N] [--video]
       deeprl plot RUN_DIR [RUN_DIR ...] [--out FILE.png] [--metric NAME]
       deeprl list [algos|presets|envs|experts|ALGO]
       deeprl collect-demos --expert NAME_OR_PATH --env ENV_ID --episodes N [--out DIR] [--seed N]
       deeprl export-policy CHECKPOINT --out FILE.pt [--episodes N]"""


def _algorithms():
    from deeprl.registry import ALGORITHMS

    return ALGORITHMS


def _algo_class(name: str):
    algos = _algorithms()
    if name not in algos:
        raise ConfigError(f"unknown algorithm {name!r}; valid: {', '.join(sorted(algos))}")
    return algos[name]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deeprl", usage=USAGE, description="Deep RL curriculum library.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an agent", usage=USAGE.splitlines()[0])
    t.add_argument("args", nargs="*", help="ALGO followed by key=value overrides")
    t.add_argument("--env", help="Gymnasium environment id")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--seeds", type=int, nargs="+", help="several seeds, run in parallel processes")
    t.add_argument("--steps", type=_int, help="total environment steps")
    t.add_argument("--run-dir", help="where to write the run (must not exist or be empty)")
    t.add_argument("--preset", help="preset name (see `deeprl list presets`), a YAML path, or 'none'")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="print log lines instead of a progress bar")
    e = sub.add_parser("eval", help="evaluate a trained run")
    e.add_argument("run_dir")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--seed", type=int, default=12345)
    e.add_argument("--video", action="store_true", help="record videos to RUN_DIR/videos")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    pl = sub.add_parser("plot", help="plot learning curves")
    pl.add_argument("run_dirs", nargs="+")
    pl.add_argument("--out", help="output PNG (default: RUN_DIR/learning_curve.png or ./learning_curves.png)")
    pl.add_argument("--metric", help="column of metrics.csv to plot (default eval/return_mean)")
    ls = sub.add_parser("list", help="list algorithms, presets, environments, or an algorithm's config")
    ls.add_argument("what", nargs="?", default="all")
    cd = sub.add_parser("collect-demos", help="record an expert's episodes as a Minari dataset")
    cd.add_argument("--expert", required=True, help="a shipped expert (deeprl list experts) or a policy/checkpoint")
    cd.add_argument("--env", required=True, help="Gymnasium environment id")
    cd.add_argument("--episodes", type=_int, required=True, help="number of episodes")
    cd.add_argument("--seed", type=int, default=0, help="episode i is reset with seed SEED + i")
    cd.add_argument("--out", help="dataset directory (default demos/ENV-EXPERT-Nep)")
    ep = sub.add_parser("export-policy", help="save the acting part of a checkpoint as a small policy file")
    ep.add_argument("checkpoint", help="a run's checkpoints/latest.pt (or a run directory)")
    ep.add_argument("--out", required=True, help="policy file to write (.pt)")
    ep.add_argument("--episodes", type=_int, default=20, help="episodes to measure its return with")
    return p


def _int(s: str) -> int:
    try:
        f = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None
    if not f.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}")
    return int(f)


# -- train ------------------------------------------------------------------------------------
def _default_run_dir(algo: str, env_id: str, seed: int | None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tag = f"{algo}-{env_id.replace('/', '_')}"
    return Path("runs") / (f"{tag}-seed{seed}-{stamp}" if seed is not None else f"{tag}-{stamp}")


def _check_fresh(run_dir: Path) -> None:
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ConfigError(f"run directory {run_dir} already exists and is not empty; choose another "
                          "--run-dir or continue it with `deeprl train --resume " + str(run_dir) + "`")


def _split_train_args(args):
    algo = None
    overrides = []
    for a in args.args:
        if "=" in a:
            overrides.append(a)
        elif algo is None:
            algo = a
        else:
            raise ConfigError(f"unexpected argument {a!r}; overrides are key=value")
    return algo, overrides


def cmd_train(args) -> int:
    from deeprl.core.config import parse_overrides

    if args.resume:
        given = [f for f, v in (("ALGO/overrides", args.args), ("--env", args.env), ("--seed", args.seed is not None),
                                ("--seeds", args.seeds), ("--preset", args.preset), ("--run-dir", args.run_dir)) if v]
        if given:
            raise ConfigError(f"--resume takes only the run directory (its saved config is used) and optionally "
                              f"--steps to extend the budget; remove {', '.join(given)}")
        return _resume(Path(args.resume), progress=not args.no_progress, steps=args.steps)
    algo, raw = _split_train_args(args)
    if algo is None:
        raise ConfigError(f"missing ALGO; valid: {', '.join(sorted(_algorithms()))}")
    cls = _algo_class(algo)
    if not args.env:
        raise ConfigError("missing --env ENV_ID (e.g. --env CartPole-v1; `deeprl list envs` shows all)")
    overrides = parse_overrides(raw)
    if args.seeds:
        return _train_seeds(args, cls, overrides)
    agent = cls(args.env, seed=args.seed, preset=args.preset,
                **({"total_steps": args.steps} if args.steps else {}), **overrides)
    run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir(algo, args.env, agent.run.seed)
    _check_fresh(run_dir)
    return _run(agent, run_dir, progress=not args.no_progress)


def _run(agent, run_dir: Path, progress: bool) -> int:
    from deeprl.core.types import BUDGET_COUNTER
    from deeprl.plot import PlotWorker
    from deeprl.runners.train import train

    show_bar = progress and sys.stderr.isatty()
    print(f"run directory: {run_dir}", file=sys.stderr)
    plotter = PlotWorker()  # imports matplotlib on the other core while the run trains
    try:
        summary = train(agent, run_dir=run_dir, progress=show_bar, log_stdout=not show_bar)
        plotter.plot([run_dir], run_dir / "learning_curve.png")
    except KeyboardInterrupt:
        print(f"interrupted; continue with: deeprl train --resume {run_dir}", file=sys.stderr)
        return 130
    finally:
        plotter.close()
    ev = summary["eval_return_mean"]
    evs = f"eval return {ev:.1f} ± {summary['eval_return_std']:.1f}" if ev is not None else "no evaluation"
    counter = BUDGET_COUNTER[agent.loop]
    print(f"done: {summary[counter]} {counter.replace('_', ' ')} in {summary['wall_time_s']:.1f}s, {evs}; "
          f"logs, learning_curve.png and checkpoints/ in {run_dir}", file=sys.stderr)
    return 0


def _load_run(run_dir: Path):
    """(agent class, checkpoint dict) of a run directory, validated without writing."""
    import yaml

    from deeprl.core import checkpoint

    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise CheckpointError(f"{run_dir} is not a run directory (no config.yaml)")
    try:
        saved = yaml.safe_load(cfg_path.read_text())
        algo = saved["algo"]
    except Exception:
        raise CheckpointError(f"{cfg_path} is not a valid run config") from None
    cls = _algo_class(algo)
    ckpt = run_dir / "checkpoints" / "latest.pt"
    if not ckpt.is_file():
        raise CheckpointError(f"{run_dir} has no checkpoint to resume from (checkpoints/latest.pt)")
    return cls, checkpoint.load(ckpt), str(ckpt)


def _resume(run_dir: Path, progress: bool, steps: int | None = None) -> int:
    """Continue a run from its latest checkpoint; ``steps`` changes its budget (a finished run
    trains on; see Agent.set_budget)."""
    cls, state, source = _load_run(run_dir)
    agent = cls.from_state_dict(state, source=source)
    if steps is not None:
        agent.set_budget(steps)
    from deeprl.core.types import BUDGET_COUNTER
    from deeprl.runners.cadence import budget, finished

    if finished(agent):
        print(f"{run_dir} already reached its budget of {budget(agent)} steps; extend it with "
              f"`deeprl train --resume {run_dir} --steps N`", file=sys.stderr)
        return 0
    counter = BUDGET_COUNTER[agent.loop]
    print(f"resuming from {counter.replace('_', ' ')[:-1]} {agent.train_state.get(counter, 0)} of {budget(agent)}",
          file=sys.stderr)
    return _run(agent, run_dir, progress)


def _train_seeds(args, cls, overrides) -> int:
    from deeprl.core.config import resolve

    if args.seed is not None:
        raise ConfigError("use either --seed or --seeds, not both")
    for s in args.seeds:  # validate every config before starting anything
        resolve(cls.name, cls.Config, args.env, seed=s, total_steps=args.steps, preset=args.preset,
                overrides=overrides)
    base = Path(args.run_dir) if args.run_dir else _default_run_dir(cls.name, args.env, None)
    dirs = {s: base / f"seed{s}" for s in args.seeds}
    for d in dirs.values():
        _check_fresh(d)
    base.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(len(args.seeds), os.cpu_count() or 1))
    threads = max(1, (os.cpu_count() or 1) // workers)  # parallel runs share the cores
    print(f"{len(args.seeds)} seeds, {workers} in parallel, into {base}/seed*", file=sys.stderr)
    pending = list(args.seeds)
    running: dict[int, subprocess.Popen] = {}
    failed = []
    while pending or running:
        while pending and len(running) < workers:
            s = pending.pop(0)
            cmd = [sys.executable, "-m", "deeprl", "train", cls.name, "--env", args.env, "--seed", str(s),
                   "--run-dir", str(dirs[s]), "--no-progress", *(["--steps", str(args.steps)] if args.steps else []),
                   *(["--preset", args.preset] if args.preset else []), *[a for a in args.args if "=" in a],
                   *([] if "torch_threads" in overrides else [f"torch_threads={threads}"])]
            log = open(base / f"seed{s}.log", "w")
            running[s] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(0.2)
        for s, proc in list(running.items()):
            if proc.poll() is not None:
                del running[s]
                status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode}, see {base}/seed{s}.log)"
                if proc.returncode:
                    failed.append(s)
                print(f"seed {s}: {status}", file=sys.stderr)
    done = [dirs[s] for s in args.seeds if s not in failed]
    if done:
        from deeprl.plot import plot_runs

        out = plot_runs(done, base / "learning_curves.png")
        print(f"plot: {out}", file=sys.stderr)
    return 1 if failed else 0


# -- eval / plot / list --------------------------------------------------------------------
def cmd_eval(args) -> int:
    from deeprl.data.evaluate import evaluate

    run_dir = Path(args.run_dir)
    cls, state, source = _load_run(run_dir)
    agent = cls.from_state_dict(state, source=source)
    video_dir = run_dir / "videos" if args.video else None
    res = evaluate(agent, args.episodes, args.seed, video_dir=video_dir, deterministic=not args.stochastic)
    out = {"eval_return_mean": res["eval/return_mean"], "eval_return_std": res["eval/return_std"],
           "eval_episodes": args.episodes, "returns": res["returns"]}
    print(json.dumps(out))
    if video_dir is not None:
        print(f"videos in {video_dir}", file=sys.stderr)
    return 0


def cmd_plot(args) -> int:
    from deeprl.plot import plot_runs

    out = args.out or (Path(args.run_dirs[0]) / "learning_curve.png" if len(args.run_dirs) == 1
                       else Path("learning_curves.png"))
    print(plot_runs(args.run_dirs, out, metric=args.metric))
    return 0


def cmd_list(args) -> int:
    from deeprl.core import config

    algos = _algorithms()
    what = args.what
    if what in algos:
        cls = algos[what]
        print(f"{what}: {(cls.__module__ and sys.modules[cls.__module__].__doc__ or '').strip().splitlines()[0]}")
        for title, c in (("run settings", config.RunConfig), (f"{what} hyperparameters", cls.Config)):
            print(f"\n{title}:")
            for name, tp, default, help_ in config.describe(c):
                print(f"  {name:24s} {tp:14s} {str(default):12s} {help_}".rstrip())
        print(f"\npresets: {', '.join(config.preset_names(what)) or '(none)'}")
        return 0
    if what == "experts":
        return _list_experts()
    if what not in ("all", "algos", "presets", "envs"):
        raise ConfigError(f"unknown list topic {what!r}; valid: algos, presets, envs, experts, or an algorithm "
                          f"({', '.join(sorted(algos))})")
    if what in ("all", "algos"):
        print("algorithms:")
        for name, cls in sorted(algos.items()):
            doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
            print(f"  {name:14s} {doc}")
    if what in ("all", "presets"):
        print("presets (deeprl/configs/ALGO/NAME.yaml; picked automatically when NAME is the env id):")
        for name in sorted(algos):
            print(f"  {name:14s} {', '.join(config.preset_names(name)) or '-'}")
    if what in ("all", "envs"):
        import gymnasium as gym

        from deeprl.envs.make import _register_optional_envs

        _register_optional_envs()
        ids = sorted(gym.registry)
        plain = [i for i in ids if "/" not in i]
        ns = sorted({i.split("/")[0] for i in ids if "/" in i})
        print(f"environments ({len(ids)} registered with Gymnasium):")
        print("  " + ", ".join(plain))
        for n in ns:
            members = [i for i in ids if i.startswith(n + "/")]
            print(f"  {n}/: {len(members)} ids (e.g. {members[0]})")
    return 0


def _list_experts() -> int:
    from deeprl.experts import load_policy, shipped_experts

    print("experts shipped with deeprl (deeprl/experts/files; use expert=NAME or --expert NAME):")
    for name, path in shipped_experts().items():
        if path is None:
            print(f"  {name:26s} scripted controller")
            continue
        _, meta = load_policy(path)
        ret = meta.get("return_mean")
        print(f"  {name:26s} {meta.get('algo', '?'):5s} return {ret:9.1f} over {meta.get('episodes')} episodes"
              if ret is not None else f"  {name}")
    return 0


# -- imitation: demonstrations and policy files -------------------------------------------------
def cmd_collect_demos(args) -> int:
    from deeprl.data.demos import Demonstrations, save_demos
    from deeprl.envs.make import obs_space_of
    from deeprl.experts import load_expert, rollout_expert

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {args.episodes}")
    expert = load_expert(args.expert, args.env, seed=args.seed)
    out = Path(args.out) if args.out else Path("demos") / (
        f"{args.env.replace('/', '_')}-{Path(expert.name).stem}-{args.episodes}ep")
    if out.exists():
        raise ConfigError(f"{out} already exists; choose another --out (nothing was written)")
    t = time.perf_counter()
    episodes = rollout_expert(expert, args.env, args.episodes, args.seed)
    obs_space, act_space = obs_space_of(args.env)
    demos = Demonstrations.from_episodes(
        episodes, obs_space, act_space, args.env,
        {"expert": expert.name, "seed": args.seed, "command": "deeprl " + " ".join(sys.argv[1:])})
    save_demos(demos, out)
    rets = demos.episode_returns()
    print(json.dumps({"dataset": str(out), "episodes": demos.num_episodes, "steps": len(demos),
                      "return_mean": float(rets.mean()), "return_std": float(rets.std()),
                      "seconds": round(time.perf_counter() - t, 1)}))
    return 0


def cmd_export_policy(args) -> int:
    from deeprl.core.seeding import seed_everything
    from deeprl.data.evaluate import evaluate
    from deeprl.experts import export_policy, load_policy

    src = Path(args.checkpoint)
    if src.is_dir():
        src = src / "checkpoints" / "latest.pt"
    out = Path(args.out)
    if out.exists():
        raise ConfigError(f"{out} already exists; choose another --out (nothing was written)")
    agent, src_meta = load_policy(src)
    seed_everything(0)
    ev = evaluate(agent, args.episodes, seed=0)
    meta = {"env_id": agent.run.env_id, "algo": agent.name, "return_mean": ev["eval/return_mean"],
            "return_std": ev["eval/return_std"], "episodes": args.episodes, "eval_seeds": f"0..{args.episodes - 1}",
            "trained_env_steps": src_meta.get("trained_env_steps"), "source": str(src)}
    export_policy(agent, out, meta)
    print(json.dumps({"policy": str(out), "bytes": out.stat().st_size, **meta}))
    return 0


def main(argv=None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value overrides may follow the options
        if args.command != "train" or any(x.startswith("-") for x in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args += extra
    try:
        return {"train": cmd_train, "eval": cmd_eval, "plot": cmd_plot, "list": cmd_list,
                "collect-demos": cmd_collect_demos, "export-policy": cmd_export_policy}[args.command](args)
    except DeeprlError as e:
        print(f"deeprl: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
