"""Demonstration datasets: save/load round trips, interchange with Minari in both directions,
D4RL-style flat files, one-line errors that leave the disk untouched, refusal to overwrite,
atomic writes, append and episode returns vs brute force."""
import json
import warnings

import gymnasium as gym
import h5py
import numpy as np
import pytest
from gymnasium import spaces

import deeprl.data.demos as demos_mod
from deeprl.core.errors import DatasetError
from deeprl.data.demos import Demonstrations, load_demos, save_demos

minari = pytest.importorskip("minari")
from minari.data_collector import EpisodeBuffer  # noqa: E402

OBS = spaces.Box(-np.inf, np.inf, (3,), np.float32)
BOX_ACT = spaces.Box(-1.0, 1.0, (2,), np.float32)
DISC_ACT = spaces.Discrete(4, start=1)
FIELDS = ("observations", "actions", "rewards", "terminations", "truncations", "next_observations", "episode_lengths")


def make_episodes(rng, lengths, obs_space=OBS, act_space=BOX_ACT):
    """Episodes ending alternately in termination, truncation and both; obs encode (episode, t)."""
    episodes = []
    for e, n in enumerate(lengths):
        if isinstance(obs_space, spaces.Discrete):
            obs = rng.integers(0, obs_space.n, n + 1)
        else:
            obs = np.stack([np.full(n + 1, e), np.arange(n + 1), rng.normal(size=n + 1)], 1).astype(np.float32)
        if isinstance(act_space, spaces.Discrete):
            acts = rng.integers(act_space.start, act_space.start + act_space.n, n)
        else:
            acts = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
        term, trunc = np.zeros(n, bool), np.zeros(n, bool)
        term[-1] = e % 3 != 1
        trunc[-1] = e % 3 != 0
        episodes.append({"observations": obs, "actions": acts, "rewards": rng.normal(size=n).astype(np.float32),
                         "terminations": term, "truncations": trunc})
    return episodes


def make_demos(rng, lengths=(4, 1, 6, 3), obs_space=OBS, act_space=BOX_ACT, env_id="Pendulum-v1", metadata=None):
    meta = {"expert": "sac-pendulum", "expert_return_mean": -151.25, "command": ["deeprl", "train"]}
    return Demonstrations.from_episodes(make_episodes(rng, lengths, obs_space, act_space), obs_space, act_space,
                                        env_id, meta if metadata is None else metadata)


def assert_same(a: Demonstrations, b: Demonstrations, spaces_too=True):
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    if spaces_too:
        assert a.observation_space == b.observation_space and a.action_space == b.action_space
        assert a.env_id == b.env_id and a.metadata == b.metadata


def snapshot(root):
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in root.rglob("*")}


def one_line_error(source):
    with pytest.raises(DatasetError) as info:
        load_demos(source)
    assert "\n" not in str(info.value)
    return str(info.value)


def minari_create(root, monkeypatch, dataset_id, episodes, obs_space, act_space, **kwargs):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    buffers = [EpisodeBuffer(id=i, seed=100 + i, observations=np.asarray(ep["observations"]),
                             actions=np.asarray(ep["actions"]), rewards=list(map(float, ep["rewards"])),
                             terminations=list(map(bool, ep["terminations"])),
                             truncations=list(map(bool, ep["truncations"])), infos={})
               for i, ep in enumerate(episodes)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        minari.create_dataset_from_buffers(dataset_id, buffers, observation_space=obs_space, action_space=act_space,
                                           algorithm_name="scripted", author="tester", **kwargs)
    return root / dataset_id


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("obs_space,act_space", [(OBS, BOX_ACT), (OBS, DISC_ACT), (spaces.Discrete(7), BOX_ACT)])
def test_round_trip_is_exact(tmp_path, obs_space, act_space):
    d = make_demos(np.random.default_rng(0), obs_space=obs_space, act_space=act_space)
    out = save_demos(d, tmp_path / "pendulum" / "expert-v0")
    assert out == tmp_path / "pendulum" / "expert-v0"
    assert sorted(p.name for p in out.rglob("*")) == ["data", "main_data.hdf5", "metadata.json"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["expert-v0"]  # no temporary left behind
    back = load_demos(out)
    assert_same(d, back)
    # truncated episodes keep their own final observation, distinct from the next episode's first
    ends = [s.stop - 1 for s in back.episodes()]
    np.testing.assert_array_equal(back.episode_lengths, [4, 1, 6, 3])
    if not isinstance(obs_space, spaces.Discrete):
        assert (back.next_observations[ends, 1] == back.episode_lengths).all()
    for source in (out / "data" / "main_data.hdf5", out / "data", str(out)):
        assert_same(d, load_demos(source))


def test_minari_reads_our_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    d = make_demos(np.random.default_rng(1), act_space=DISC_ACT)
    save_demos(d, tmp_path / "deeprl" / "pendulum" / "expert-v0")
    ds = minari.load_dataset("deeprl/pendulum/expert-v0")
    assert ds.id == "deeprl/pendulum/expert-v0"  # default id = location under the Minari root
    assert ds.total_steps == len(d) == 14 and ds.total_episodes == d.num_episodes == 4
    assert ds.observation_space == d.observation_space and ds.action_space == d.action_space
    assert ds.env_spec.id == "Pendulum-v1"
    assert list(minari.list_local_datasets()) == ["deeprl/pendulum/expert-v0"]
    for ep, s in zip(ds.iterate_episodes(), d.episodes()):
        np.testing.assert_array_equal(ep.observations, np.concatenate([d.observations[s], d.next_observations[s][-1:]]))
        for name in ("actions", "rewards", "terminations", "truncations"):
            np.testing.assert_array_equal(getattr(ep, name), getattr(d, name)[s])
        assert ep.actions.dtype == d.actions.dtype and ep.infos == {}
    # the space strings are Minari's own serialisation, byte for byte
    meta = json.loads((tmp_path / "deeprl/pendulum/expert-v0/data/metadata.json").read_text())
    assert meta["observation_space"] == minari.serialization.serialize_space(d.observation_space)
    assert meta["action_space"] == minari.serialization.serialize_space(d.action_space)


def test_default_dataset_id_outside_the_minari_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "root"))
    d = make_demos(np.random.default_rng(2), env_id="MyLab/CustomArm-v2")  # not registered with gymnasium
    save_demos(d, tmp_path / "elsewhere")
    meta = json.loads((tmp_path / "elsewhere/data/metadata.json").read_text())
    assert meta["dataset_id"] == "deeprl/MyLab/CustomArm-v2/demos-v0" and "env_spec" not in meta
    assert demos_mod.DATASET_ID_RE.match(meta["dataset_id"])
    save_demos(d, tmp_path / "named", "mine/run-v3")
    assert json.loads((tmp_path / "named/data/metadata.json").read_text())["dataset_id"] == "mine/run-v3"
    with pytest.raises(DatasetError, match="malformed"):
        save_demos(d, tmp_path / "bad", "no version")
    assert not (tmp_path / "bad").exists()


def test_datasets_written_by_minari_load(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    episodes = make_episodes(rng, (5, 2, 7), OBS, DISC_ACT)
    path = minari_create(tmp_path, monkeypatch, "toy/scripted-v1", episodes, OBS, DISC_ACT)
    expected = Demonstrations.from_episodes(episodes, OBS, DISC_ACT)
    before = snapshot(tmp_path)
    for source in (path, path / "data" / "main_data.hdf5", "toy/scripted-v1"):
        got = load_demos(source)
        assert_same(expected, got, spaces_too=False)
        assert got.observation_space == OBS and got.action_space == DISC_ACT and got.env_id is None
        assert got.metadata["algorithm_name"] == "scripted" and got.metadata["dataset_id"] == "toy/scripted-v1"
    assert snapshot(tmp_path) == before
    # and back: re-saved, Minari's descriptive keys survive
    save_demos(got, tmp_path / "toy" / "resaved-v0")
    assert minari.load_dataset("toy/resaved-v0").storage.metadata["author"] == {"tester"}


def test_minari_jpeg_images_are_decoded(tmp_path, monkeypatch):
    image = spaces.Box(0, 255, (32, 32, 3), np.uint8)
    rng = np.random.default_rng(4)
    frames = [np.repeat(np.repeat(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8), 8, 0), 8, 1) for _ in range(4)]
    episode = {"observations": np.stack(frames), "actions": np.array([1, 2, 3]), "rewards": np.ones(3),
               "terminations": np.array([0, 0, 1], bool), "truncations": np.zeros(3, bool)}
    minari_create(tmp_path, monkeypatch, "img/jpeg-v0", [episode], image, DISC_ACT)
    ours = load_demos("img/jpeg-v0")
    theirs = next(minari.load_dataset("img/jpeg-v0").iterate_episodes())
    np.testing.assert_array_equal(ours.observations, theirs.observations[:-1])
    np.testing.assert_array_equal(ours.next_observations[-1], theirs.observations[-1])
    # ours are stored raw (lossless), and Minari reads them raw too
    save_demos(ours, tmp_path / "img" / "raw-v0")
    raw = next(minari.load_dataset("img/raw-v0").iterate_episodes())
    np.testing.assert_array_equal(raw.observations, theirs.observations)


def write_d4rl(file, n_next=True):
    """Rows 0-2 terminate, 3-6 time out, 7-9 are cut by the end of the data."""
    obs = np.arange(10 * 2, dtype=np.float32).reshape(10, 2)
    with h5py.File(file, "w") as f:
        f["observations"] = obs
        f["actions"] = np.arange(10, dtype=np.float32)[:, None]
        f["rewards"] = np.arange(10, dtype=np.float32)
        f["terminals"] = np.isin(np.arange(10), [2])
        f["timeouts"] = np.isin(np.arange(10), [6])
        if n_next:
            f["next_observations"] = obs + 0.5
        f.create_group("infos")["qpos"] = np.zeros((10, 1))
    return obs


def test_d4rl_flat_files(tmp_path):
    obs = write_d4rl(tmp_path / "with_next.hdf5")
    d = load_demos(tmp_path / "with_next.hdf5")
    np.testing.assert_array_equal(d.episode_lengths, [3, 4, 3])
    np.testing.assert_array_equal(d.observations, obs)
    np.testing.assert_array_equal(d.next_observations, obs + 0.5)
    np.testing.assert_array_equal(np.flatnonzero(d.terminations), [2])
    np.testing.assert_array_equal(np.flatnonzero(d.truncations), [6, 9])  # the cut episode ends truncated
    assert d.observation_space == spaces.Box(-np.inf, np.inf, (2,), np.float32) and d.env_id is None
    np.testing.assert_allclose(d.episode_returns(), [3, 18, 24])

    write_d4rl(tmp_path / "no_next.hdf5", n_next=False)
    d = load_demos(tmp_path / "no_next.hdf5")
    # the terminal step stays (its own observation stands in); timeout and cut lose their last step
    np.testing.assert_array_equal(d.episode_lengths, [3, 3, 2])
    np.testing.assert_array_equal(d.observations, obs[[0, 1, 2, 3, 4, 5, 7, 8]])
    np.testing.assert_array_equal(d.next_observations, obs[[1, 2, 2, 4, 5, 6, 8, 9]])
    np.testing.assert_array_equal(d.rewards, [0, 1, 2, 3, 4, 5, 7, 8])
    np.testing.assert_array_equal(np.flatnonzero(d.terminations), [2])
    np.testing.assert_array_equal(np.flatnonzero(d.truncations), [5, 7])


def test_errors_are_one_line_and_touch_nothing(tmp_path):
    d = make_demos(np.random.default_rng(5))
    good = save_demos(d, tmp_path / "good-v0")
    (tmp_path / "random.hdf5").write_bytes(np.random.default_rng(0).bytes(4096))
    data = (good / "data" / "main_data.hdf5").read_bytes()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "main_data.hdf5").write_bytes(data[: len(data) // 2])
    with h5py.File(tmp_path / "unrelated.hdf5", "w") as f:
        f.create_group("weights")["layer0"] = np.zeros(3)
    broken = tmp_path / "broken-v0"
    save_demos(d, broken)
    with h5py.File(broken / "data" / "main_data.hdf5", "a") as f:
        del f["episode_2/actions"]
        f["episode_2/actions"] = np.zeros((2, 2), np.float32)
    dict_obs = tmp_path / "dict.hdf5"
    with h5py.File(dict_obs, "w") as f:
        f.create_group("episode_0").create_group("observations")["pos"] = np.zeros((3, 2))
    before = snapshot(tmp_path)

    assert "does not exist" in one_line_error(tmp_path / "missing") and "D4RL" in one_line_error("no/such-v0")
    assert "not a readable HDF5" in one_line_error(tmp_path / "random.hdf5")
    assert "truncated" in one_line_error(tmp_path / "half" / "main_data.hdf5")
    assert "no episodes in the Minari or D4RL layout" in one_line_error(tmp_path / "unrelated.hdf5")
    assert "episode_2 has 6 rewards but 2 actions" in one_line_error(broken)
    assert "not supported" in one_line_error(dict_obs)
    assert "without data/main_data.hdf5" in one_line_error(tmp_path)
    assert snapshot(tmp_path) == before


def test_refuses_to_overwrite_and_writes_atomically(tmp_path, monkeypatch):
    rng = np.random.default_rng(6)
    first, second = make_demos(rng), make_demos(rng, lengths=(2, 2))
    path = save_demos(first, tmp_path / "ds-v0")
    before = snapshot(tmp_path)
    with pytest.raises(DatasetError, match="already exists; pass overwrite=True") as info:
        save_demos(second, path)
    assert str(path) in str(info.value) and snapshot(tmp_path) == before

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(demos_mod, "_write_hdf5", crash)
    with pytest.raises(KeyboardInterrupt):
        save_demos(second, path, overwrite=True)
    with pytest.raises(KeyboardInterrupt):
        save_demos(second, tmp_path / "new-v0")
    assert snapshot(tmp_path) == before  # nothing half-written, no temporaries left
    monkeypatch.undo()

    save_demos(second, path, overwrite=True)
    assert_same(second, load_demos(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds-v0"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not a Minari dataset"):
        save_demos(second, tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_append_and_episode_returns(tmp_path):
    rng = np.random.default_rng(7)
    a, b = make_demos(rng), make_demos(rng, lengths=(2, 5), metadata={"other": 1})
    c = a.append(b)
    assert len(c) == len(a) + len(b) and c.num_episodes == 6 and c.metadata == a.metadata
    assert len(a) == 14 and a.num_episodes == 4  # a new object; the parts are untouched
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(c, name), np.concatenate([getattr(a, name), getattr(b, name)]))
    brute = [sum(float(c.rewards[i]) for i in range(s.start, s.stop)) for s in c.episodes()]
    np.testing.assert_allclose(c.episode_returns(), brute, rtol=1e-12)
    assert [s.stop - s.start for s in c.episodes()] == [4, 1, 6, 3, 2, 5]
    assert_same(c, load_demos(save_demos(c, tmp_path / "c-v0")))
    with pytest.raises(DatasetError, match="action_space"):
        a.append(make_demos(rng, act_space=DISC_ACT))
    with pytest.raises(DatasetError, match="env_id"):
        a.append(make_demos(rng, env_id="Hopper-v5"))


def test_invalid_demonstrations_are_refused(tmp_path):
    rng = np.random.default_rng(8)
    episodes = make_episodes(rng, (3, 2))
    episodes[1]["observations"] = episodes[1]["observations"][:-1]
    with pytest.raises(DatasetError, match="episode 1 has 2 steps but 2 observations; expected 3"):
        Demonstrations.from_episodes(episodes)
    with pytest.raises(DatasetError, match="observation_space is a Dict space; Dict and Tuple spaces are not"):
        make_demos(rng, obs_space=spaces.Dict({"x": OBS}))
    d = make_demos(rng)
    d.next_observations[0] += 1  # no longer the next step's observation
    with pytest.raises(DatasetError, match=r"next_observations\[0\] differs from observations\[1\]"):
        save_demos(d, tmp_path / "x-v0")
    assert not (tmp_path / "x-v0").exists() and not list(tmp_path.iterdir())
    env = gym.make("CartPole-v1")
    assert demos_mod.deserialize_space(demos_mod.serialize_space(env.observation_space), "t") == env.observation_space
