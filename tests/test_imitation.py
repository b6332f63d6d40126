"""Imitation learning: multimodal behaviour cloning, DAgger's aggregation, observation
histories, experts and demonstrations, resume, and bad input."""
from __future__ import annotations

import csv
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_resume import interrupt_after, run_cli, tree_hashes

import deeprl.envs  # noqa: F401  (registers deeprl/ObstacleCourse-v0)
from deeprl import BC, SAC, DAgger
from deeprl.algos.imitation._common import history_stacks
from deeprl.core.errors import ConfigError, DatasetError, SpaceError
from deeprl.data.demos import Demonstrations, load_demos, save_demos
from deeprl.envs.obstacle import ObstacleExpert, rollout_stats
from deeprl.experts import export_policy, load_expert, rollout_expert
from deeprl.runners.train import train

OBSTACLE = "deeprl/ObstacleCourse-v0"
QUIET = dict(eval_episodes=0, checkpoint_every=0, torch_threads=1)


def one_line_error(stderr: str) -> bool:
    lines = stderr.strip().splitlines()
    return lines[-1].startswith("deeprl: error: ") and sum("error" in line for line in lines) == 1 \
        and "Traceback" not in stderr


@pytest.fixture(scope="module")
def multimodal():
    """BC with each head on 50 demonstrations that pass the obstacle left or right."""
    res = {}
    for head in ("gaussian", "mixture", "autoregressive"):
        torch.manual_seed(0)
        agent = BC(OBSTACLE, seed=0, preset="none", total_steps=6000, policy_head=head, demo_episodes=50, **QUIET)
        agent.learn()
        res[head] = rollout_stats(lambda obs, agent=agent: agent.predict(obs, deterministic=False), 100)
    return res


def test_expert_demonstrations_are_bimodal():
    episodes = rollout_expert(load_expert("deeprl_ObstacleCourse-v0", OBSTACLE), OBSTACLE, 100, seed=0)
    left = sum(ep["observations"][5, 0] < 0 for ep in episodes)
    assert 30 <= left <= 70
    assert all(ep["terminations"][-1] and ep["rewards"].sum() == pytest.approx(8.0) for ep in episodes)


def test_unimodal_gaussian_averages_the_modes_into_the_obstacle(multimodal):
    r = multimodal["gaussian"]
    assert r["goal"] <= 30, r  # most rollouts collide or stall on the centre line


@pytest.mark.parametrize("head", ["mixture", "autoregressive"])
def test_multimodal_heads_reproduce_both_modes(multimodal, head):
    r = multimodal[head]
    assert r["goal"] >= 75 and r["collided"] <= 20, r
    assert r["left"] >= 15 and r["right"] >= 15, r  # both ways around, not one mode


def test_dagger_aggregates_the_learners_states_labelled_by_the_expert(tmp_path):
    agent = DAgger(OBSTACLE, seed=0, preset="none", total_steps=300, rollout_steps=100, demo_episodes=2,
                   steps_per_iteration=50, eval_every=100, eval_episodes=2, checkpoint_every=0, torch_threads=1)
    summary = train(agent, run_dir=tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    sizes = [float(r["train/dataset_size"]) for r in rows if r.get("train/dataset_size")]
    assert sizes == [32, 132, 232, 332]  # 2 demos of 16 steps, then +100 learner steps per iteration
    evals = [r for r in rows if r.get("eval/return_mean")]
    assert float(evals[0]["time/env_steps"]) == 0  # iteration 0 (plain BC) is evaluated too
    assert summary["expert_return_mean"] == pytest.approx(8.0) and summary["demo_steps"] == 32
    obs, labels = agent.data[0].numpy(), agent.data[1].numpy()
    expert = ObstacleExpert(seed=1)
    clear = np.abs(obs[32:, 0]) > 0.05  # off the centre line the expert's label is deterministic
    np.testing.assert_allclose(labels[32:][clear], expert.predict(obs[32:][clear]))
    # the run's plot carries the expert's return and iteration 0 (behaviour cloning) as reference lines
    from deeprl.plot import plot_runs, read_run, reference_lines
    lines = reference_lines(tmp_path, *read_run(tmp_path))
    assert lines == [("expert", "--", summary["expert_return_mean"]),
                     ("BC (DAgger iteration 0)", ":", float(evals[0]["eval/return_mean"]))]
    assert plot_runs([tmp_path], tmp_path / "curve.png").stat().st_size > 0


def test_history_stacks_match_the_env_wrapper():
    env = gym.wrappers.FrameStackObservation(gym.make("Pendulum-v1"), 3, padding_type="reset")
    raw, stacked, lengths = [], [], []
    for ep in range(2):
        obs, _ = env.reset(seed=ep)
        n = 0
        for _ in range(7 + ep):
            stacked.append(obs)
            raw.append(obs[-1])
            obs, *_ = env.step(env.action_space.sample())
            n += 1
        lengths.append(n)
    np.testing.assert_array_equal(history_stacks(np.array(raw), np.array(lengths), 3), np.array(stacked))


def test_bc_with_observation_history_trains_and_acts():
    agent = BC(OBSTACLE, seed=0, preset="none", total_steps=200, obs_history=3, demo_episodes=2, **QUIET)
    agent.learn()
    assert agent.obs_space.shape == (3, 2) and agent.data[0].shape == (32, 3, 2)
    assert agent.predict(np.zeros((3, 2), np.float32)).shape == (2,)


def test_user_demonstrations_and_exported_policy_as_expert(tmp_path):
    episodes = rollout_expert(load_expert("deeprl_ObstacleCourse-v0"), OBSTACLE, 4, seed=3)
    env = gym.make(OBSTACLE)
    save_demos(Demonstrations.from_episodes(episodes, env.observation_space, env.action_space, OBSTACLE),
               tmp_path / "demos")
    bc = BC(OBSTACLE, seed=0, preset="none", total_steps=300, demos=str(tmp_path / "demos"), expert="none-needed",
            **QUIET)
    with pytest.raises(ConfigError, match="unknown expert .none-needed."):
        bc.learn()  # an explicitly named expert must exist even when demos are given
    bc = BC(OBSTACLE, seed=0, preset="none", total_steps=300, demos=str(tmp_path / "demos"), **QUIET)
    bc.learn()
    assert len(bc.data[1]) == 64
    export_policy(bc, tmp_path / "bc.pt", {"note": "test"})
    expert = load_expert(tmp_path / "bc.pt", OBSTACLE)
    obs = np.random.default_rng(0).uniform(-2, 2, (5, 2)).astype(np.float32)
    np.testing.assert_array_equal(expert.predict(obs), bc.predict(obs))
    assert expert.meta == {"note": "test"}


def test_dagger_resume_equals_uninterrupted(tmp_path):
    kw = dict(seed=2, preset="none", total_steps=300, rollout_steps=100, demo_episodes=2, steps_per_iteration=30,
              eval_every=100, eval_episodes=2, checkpoint_every=100, torch_threads=1)
    ref = DAgger(OBSTACLE, **kw)
    train(ref, run_dir=tmp_path / "ref")
    agent = DAgger(OBSTACLE, **kw)
    interrupt_after(agent, 3)  # iterations 0 and 1 done, checkpoint at 100 env steps
    with pytest.raises(KeyboardInterrupt):
        train(agent, run_dir=tmp_path / "run")
    resumed = DAgger.load(tmp_path / "run" / "checkpoints" / "latest.pt")
    train(resumed, run_dir=tmp_path / "run")
    for (k, a), b in zip(ref.policy.state_dict().items(), resumed.policy.state_dict().values()):
        assert torch.equal(a, b), k
    assert torch.equal(ref.data[0], resumed.data[0]) and torch.equal(ref.data[1], resumed.data[1])
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("time/sps", "time/wall_s")} for r in rows]  # noqa
    assert strip(csv.DictReader(open(tmp_path / "ref" / "metrics.csv"))) == \
        strip(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))


def test_bc_counts_gradient_steps_and_resumes_a_run_written_before_grad_steps(tmp_path):
    """BC runs in the offline loop: no env steps; budget, evals and checkpoints in gradient steps. A run
    directory from before grad_steps existed (env_steps counted BC's gradient steps) resumes exactly."""
    kw = dict(seed=3, preset="none", total_steps=300, demo_episodes=2, steps_per_iteration=50, eval_every=100,
              eval_episodes=2, checkpoint_every=100, torch_threads=1)
    ref = BC(OBSTACLE, **kw)
    summary = train(ref, run_dir=tmp_path / "ref")
    assert (summary["env_steps"], summary["grad_steps"], summary["iterations"]) == (0, 300, 6)
    rows = list(csv.DictReader(open(tmp_path / "ref" / "metrics.csv")))
    assert [r["time/grad_steps"] for r in rows if r["eval/return_mean"]] == ["100", "200", "300", "300"]
    assert {r["time/env_steps"] for r in rows} == {"0"}
    agent = BC(OBSTACLE, **kw)
    interrupt_after(agent, 170)  # one update per gradient step: checkpoint at 100, rows up to 150 written
    with pytest.raises(KeyboardInterrupt):
        train(agent, run_dir=tmp_path / "run")
    # rewrite the run as the previous format had it: no grad_steps, env_steps = gradient steps
    ckpt = tmp_path / "run" / "checkpoints" / "latest.pt"
    from deeprl.core import checkpoint

    state = checkpoint.load(ckpt)
    state["train"]["env_steps"] = state["train"].pop("grad_steps")
    checkpoint.save(state, ckpt)
    old = [{("time/env_steps" if k == "time/grad_steps" else k): v for k, v in r.items() if k != "time/env_steps"}
           for r in csv.DictReader(open(tmp_path / "run" / "metrics.csv"))]
    with open(tmp_path / "run" / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(old[0]))
        w.writeheader()
        w.writerows(old)
    resumed = BC.load(ckpt)
    assert (resumed.train_state["env_steps"], resumed.train_state["grad_steps"]) == (0, 100)
    train(resumed, run_dir=tmp_path / "run")
    for (k, a), b in zip(ref.policy.state_dict().items(), resumed.policy.state_dict().values()):
        assert torch.equal(a, b), k
    losses = lambda p: [r["loss/imitation"] for r in csv.DictReader(open(p)) if r.get("loss/imitation")]  # noqa
    assert losses(tmp_path / "run" / "metrics.csv") == losses(tmp_path / "ref" / "metrics.csv")


# -- bad input ---------------------------------------------------------------------------------------------
def test_expert_with_other_spaces_is_refused_naming_both(tmp_path):
    export_policy(SAC("Pendulum-v1", preset="none", torch_threads=1, buffer_size=1000), tmp_path / "pend.pt")
    with pytest.raises(SpaceError, match=r"observation space Box.*\(3,\).*deeprl/ObstacleCourse-v0 has Box.*\(2,\)"):
        load_expert(tmp_path / "pend.pt", OBSTACLE)
    out = run_cli(["train", "dagger", "--env", OBSTACLE, "--run-dir", "r", f"expert={tmp_path / 'pend.pt'}"],
                  cwd=tmp_path)
    assert out.returncode == 2 and "observation space" in out.stderr and one_line_error(out.stderr)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("kind", ["missing", "truncated", "not_a_dataset"])
def test_bad_demonstration_files_are_refused_and_nothing_is_touched(tmp_path, kind):
    episodes = rollout_expert(load_expert("deeprl_ObstacleCourse-v0"), OBSTACLE, 2, seed=0)
    good = save_demos(Demonstrations.from_episodes(episodes, env_id=OBSTACLE), tmp_path / "good")
    target = tmp_path / "bad"
    if kind == "truncated":
        target.mkdir()
        data = (good / "data" / "main_data.hdf5").read_bytes()
        (target / "main_data.hdf5").write_bytes(data[: len(data) // 2])
        target = target / "main_data.hdf5"
    elif kind == "not_a_dataset":
        target.write_text("observations,actions\n1,2\n")
    before = tree_hashes(tmp_path)
    with pytest.raises(DatasetError):
        load_demos(target)
    out = run_cli(["train", "bc", "--env", OBSTACLE, "--run-dir", "r", f"demos={target}"], cwd=tmp_path)
    assert out.returncode == 2 and one_line_error(out.stderr), out.stderr
    assert str(target.name) in out.stderr
    assert tree_hashes(tmp_path) == before and not (tmp_path / "r").exists()


def test_collect_demos_cli_writes_a_minari_dataset(tmp_path):
    out = run_cli(["collect-demos", "--expert", "deeprl_ObstacleCourse-v0", "--env", OBSTACLE, "--episodes", "3",
                   "--out", "d"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["episodes"] == 3 and info["steps"] == 48 and info["return_mean"] == pytest.approx(8.0)
    demos = load_demos(tmp_path / "d")
    assert demos.env_id == OBSTACLE and demos.num_episodes == 3
    again = run_cli(["collect-demos", "--expert", "deeprl_ObstacleCourse-v0", "--env", OBSTACLE, "--episodes", "3",
                     "--out", "d"], cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    wrong = run_cli(["collect-demos", "--expert", "deeprl_ObstacleCourse-v0", "--env", "Pendulum-v1",
                     "--episodes", "1"], cwd=tmp_path)
    assert wrong.returncode == 2 and "Pendulum-v1 has" in wrong.stderr


def test_shipped_experts_load_and_record_how_they_were_made():
    from deeprl.experts import load_policy, shipped_experts

    files = {k: v for k, v in shipped_experts().items() if v is not None}
    # competent, not just shipped: above what falling early gives (Ant: about 1000 for surviving
    # 1000 steps without moving; LunarLander: 200 is "solved")
    competent = {"Hopper-v5": 2000, "HalfCheetah-v5": 4000, "Walker2d-v5": 2000, "Ant-v5": 1500,
                 "LunarLander-v3": 200}
    assert set(competent) <= set(files), sorted(files)
    for name, path in files.items():
        assert path.stat().st_size < 2_000_000, f"{name}: shipped experts must stay small"
        _, meta = load_policy(path)
        assert meta["env_id"].replace("/", "_") == name and meta["episodes"] >= 20
        assert meta["return_mean"] >= competent.get(name, -np.inf), (name, meta["return_mean"])
        assert np.isfinite(meta["return_mean"]) and meta["command"].startswith("deeprl train ")
        expert = load_expert(name, meta["env_id"])
        obs = np.stack([expert.observation_space.sample() for _ in range(4)])
        assert expert.predict(obs).shape[0] == 4


def test_dagger_with_history_and_expert_mixing_labels_the_newest_observation():
    agent = DAgger(OBSTACLE, seed=0, preset="none", total_steps=200, rollout_steps=100, demo_episodes=2,
                   steps_per_iteration=20, obs_history=2, beta=0.5, **QUIET)
    agent.learn()
    obs, labels = agent.data[0].numpy(), agent.data[1].numpy()
    assert obs.shape == (232, 2, 2) and labels.shape == (232, 2)
    clear = np.abs(obs[32:, -1, 0]) > 0.05
    np.testing.assert_allclose(labels[32:][clear], ObstacleExpert(seed=1).predict(obs[32:, -1][clear]))


@pytest.mark.parametrize("loss, rollout_policy, mean", [("mse", "auto", True), ("nll", "auto", False),
                                                         ("nll", "mean", True), ("mse", "sample", False)])
def test_dagger_rollouts_take_the_mean_when_only_the_mean_is_trained(loss, rollout_policy, mean):
    agent = DAgger(OBSTACLE, seed=0, preset="none", loss=loss, rollout_policy=rollout_policy, **QUIET)
    obs = np.random.default_rng(0).uniform(-1, 1, (64, 2)).astype(np.float32)
    actions, _ = agent.behaviour_policy()(obs)
    with torch.no_grad():
        mode = agent.policy(torch.as_tensor(obs)).mode().numpy()
    assert np.allclose(actions, mode) == mean


@pytest.mark.learning
def test_bc_learns_lunarlander_from_the_shipped_expert(tmp_path):
    """5 demonstrations of the shipped DQN expert (about 1000 steps), 3000 gradient steps."""
    agent = BC("LunarLander-v3", seed=0, total_steps=3000, eval_every=0, eval_episodes=10, checkpoint_every=0,
               torch_threads=1)
    summary = train(agent, run_dir=tmp_path)
    assert summary["expert_return_mean"] >= 200 and summary["demo_episodes"] == 5
    assert summary["eval_return_mean"] >= 50, summary  # measured 144 (random policy: about -180)


@pytest.mark.learning
def test_dagger_recovers_where_bc_fails_on_hopper(tmp_path):
    """CS285 HW1's contrast: BC on 5 demonstrations of the shipped SAC expert falls early
    (measured 9-30% of the expert over 3 seeds); 4 DAgger iterations of 1000 learner steps
    relabelled by the expert recover most of the expert's return."""
    agent = DAgger("Hopper-v5", seed=0, total_steps=4000, rollout_steps=1000, eval_every=1000, eval_episodes=5,
                   checkpoint_every=0, torch_threads=1)
    summary = train(agent, run_dir=tmp_path)
    evals = [float(r["eval/return_mean"]) for r in csv.DictReader(open(tmp_path / "metrics.csv"))
             if r.get("eval/return_mean")]
    expert = summary["expert_return_mean"]
    assert expert >= 2000 and len(evals) >= 5, (expert, evals)
    # measured: expert 2640; BC (iteration 0) 1193; then 638, 2677, 1014, 3024 and 3016 at the end
    assert evals[0] <= 0.6 * expert, evals  # iteration 0 is behaviour cloning
    assert max(evals[1:]) >= 0.8 * expert and summary["eval_return_mean"] >= 0.6 * expert, (expert, evals)
