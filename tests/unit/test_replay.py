"""Replay buffer: n-step targets vs brute force over per-env episode lists, prioritized
sampling frequencies and importance weights vs their definition, sum tree vs cumsum search,
checkpoint round trip, memory refusal."""
import numpy as np
import pytest
import torch
from gymnasium import spaces

from deeprl.core.errors import ConfigError
from deeprl.core.types import Rollout
from deeprl.data.replay import ReplayBuffer, SumTree

OBS = spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = spaces.Box(-1, 1, (2,), np.float32)


def make_stream(rng, steps, N, p_term=0.08, p_trunc=0.05):
    """Per-env chronological transitions; obs = (absolute time, env, noise) identifies them."""
    T = steps
    obs = np.zeros((T, N, 3), np.float32)
    nxt = np.zeros((T, N, 3), np.float32)
    acts = rng.normal(size=(T, N, 2)).astype(np.float32)
    rew = rng.normal(size=(T, N)).astype(np.float32)
    term = rng.random((T, N)) < p_term
    trunc = (rng.random((T, N)) < p_trunc) & ~term
    trunc |= (rng.random((T, N)) < 0.02) & term  # both flags sometimes
    for e in range(N):
        for t in range(T):
            obs[t, e] = (t, e, rng.normal())
            done = term[t, e] or trunc[t, e]
            # successor: the next obs, or a distinct final observation when the episode ended
            nxt[t, e] = (t + 0.5, e, rng.normal()) if done else (t + 1, e, 0.0)
    for e in range(N):  # make next_obs[t] == obs[t+1] exactly when not done
        for t in range(T - 1):
            if not (term[t, e] or trunc[t, e]):
                nxt[t, e] = obs[t + 1, e]
    return obs, acts, rew, term, trunc, nxt


def brute_force(stream, t, e, n, gamma, newest):
    obs, acts, rew, term, trunc, nxt = stream
    R, m = 0.0, 0
    for k in range(n):
        if t + k > newest - 1:  # only steps with a stored successor
            break
        R += gamma ** k * rew[t + k, e]
        m += 1
        if term[t + k, e] or trunc[t + k, e]:
            break
    last = t + m - 1
    disc = 0.0 if term[last, e] else gamma ** m
    return R, disc, nxt[last, e], acts[t, e]


@pytest.mark.parametrize("n_step,capacity,chunks", [(1, 400, [7, 13, 50]), (3, 400, [1, 5, 9, 30]),
                                                    (5, 60, [17, 23, 40]), (4, 60, [60, 61])])
@pytest.mark.parametrize("prioritized", [False, True])
def test_n_step_targets_match_brute_force(n_step, capacity, chunks, prioritized):
    rng = np.random.default_rng(0)
    N, gamma = 3, 0.9
    total = sum(chunks)
    stream = make_stream(rng, total, N)
    buf = ReplayBuffer(capacity, OBS, ACT, N, n_step=n_step, gamma=gamma, prioritized=prioritized,
                       rng=np.random.default_rng(1))
    s = 0
    for c in chunks:
        sl = slice(s, s + c)
        buf.add(Rollout(stream[0][sl], stream[1][sl], np.zeros((c, N), np.float32), stream[2][sl],
                        stream[3][sl], stream[4][sl], stream[5][sl], np.ones((c, N), bool)))
        s += c
    newest = total - 1
    oldest = max(0, total - capacity // N)
    b = buf.sample(2000)
    seen = set()
    for i in range(2000):
        t, e = int(round(b.obs[i, 0].item())), int(round(b.obs[i, 1].item()))
        seen.add((t, e))
        assert oldest <= t <= newest - 1, "sampled the newest step or an overwritten one"
        R, disc, nx, a = brute_force(stream, t, e, n_step, gamma, newest)
        assert b.rewards[i].item() == pytest.approx(R, abs=1e-5)
        assert b.discounts[i].item() == pytest.approx(disc, abs=1e-6)
        if disc > 0:
            np.testing.assert_array_equal(b.next_obs[i].numpy(), nx)
        np.testing.assert_array_equal(b.actions[i].numpy(), a)
    assert len(seen) > 0.8 * min(capacity // N * N, total * N - N)  # covers the buffer
    assert buf.num_sampleable == (min(total, capacity // N) - 1) * N


def test_sum_tree_find_matches_cumsum_search():
    rng = np.random.default_rng(0)
    tree = SumTree(1000)
    p = rng.random(1000) * (rng.random(1000) < 0.7)
    tree.update(np.arange(1000), p)
    tree.update(np.array([5, 5, 7]), np.array([0.3, 0.9, 0.0]))  # repeated index: last wins
    p[5], p[7] = 0.9, 0.0
    assert tree.total == pytest.approx(p.sum())
    assert tree.min == pytest.approx(p[p > 0].min())
    u = rng.random(5000) * p.sum()
    expected = np.searchsorted(np.cumsum(p), u, side="right")
    np.testing.assert_array_equal(tree.find(u), expected)


def _filled(prioritized, capacity=64, N=2, steps=40, alpha=0.6):
    rng = np.random.default_rng(3)
    stream = make_stream(rng, steps, N, p_term=0.0, p_trunc=0.0)
    buf = ReplayBuffer(capacity, OBS, ACT, N, prioritized=prioritized, alpha=alpha, rng=np.random.default_rng(4))
    buf.add(Rollout(stream[0], stream[1], np.zeros((steps, N), np.float32), stream[2], stream[3], stream[4],
                    stream[5], np.ones((steps, N), bool)))
    return buf


def test_prioritized_frequencies_and_weights_follow_their_definition():
    alpha, beta = 0.7, 0.5
    buf = _filled(True, alpha=alpha)
    M = buf.num_sampleable
    newest = (buf.pos - 1) % buf.T
    idx = np.array([i for i in range(buf.T * buf.N) if i // buf.N != newest and (buf.full or i // buf.N < buf.pos)])
    assert len(idx) == M
    td = np.random.default_rng(5).exponential(size=M)
    buf.update_priorities(idx, td)
    P = (td + buf.priority_eps) ** alpha
    P /= P.sum()
    counts = np.zeros(buf.T * buf.N)
    for _ in range(200):
        b = buf.sample(256, beta=beta)
        np.add.at(counts, b.indices, 1)
        w_def = (M * P[np.searchsorted(idx, b.indices)]) ** (-beta) / (M * P.min()) ** (-beta)
        np.testing.assert_allclose(b.weights.numpy(), w_def, rtol=1e-5)
    freq = counts[idx] / counts.sum()
    assert counts.sum() == 200 * 256 and counts[~np.isin(np.arange(len(counts)), idx)].sum() == 0
    # chi-square goodness of fit (stratified sampling only reduces the variance)
    chi2 = ((counts[idx] - counts.sum() * P) ** 2 / (counts.sum() * P)).sum()
    assert chi2 < M + 5 * np.sqrt(2 * M), chi2
    assert np.abs(freq - P).max() < 0.01


def test_new_transitions_get_the_max_priority_and_the_newest_is_excluded():
    buf = _filled(True)
    newest = (buf.pos - 1) % buf.T
    leaves = buf.tree.leaves()
    assert np.all(leaves[newest * buf.N:(newest + 1) * buf.N] == 0)
    assert np.all(np.delete(leaves, np.arange(newest * buf.N, (newest + 1) * buf.N)) == buf.max_priority)


def test_uniform_sampling_is_uniform():
    buf = _filled(False)
    assert buf.full
    counts = np.bincount(buf.sample(100_000).indices, minlength=buf.T * buf.N)
    newest = (buf.pos - 1) % buf.T
    assert counts[newest * buf.N:(newest + 1) * buf.N].sum() == 0
    counts = np.delete(counts, np.arange(newest * buf.N, (newest + 1) * buf.N))
    expected = 100_000 / len(counts)
    assert ((counts - expected) ** 2 / expected).sum() < len(counts) + 5 * np.sqrt(2 * len(counts))


@pytest.mark.parametrize("prioritized", [False, True])
def test_state_dict_round_trip_gives_identical_samples(prioritized):
    rng = np.random.default_rng(0)
    N = 2
    stream = make_stream(rng, 50, N)
    a = ReplayBuffer(60, OBS, ACT, N, n_step=3, prioritized=prioritized, rng=np.random.default_rng(9))
    a.add(Rollout(stream[0], stream[1], np.zeros((50, N), np.float32), *stream[2:], np.ones((50, N), bool)))
    if prioritized:
        a.update_priorities(np.array([0, 3, 5]), np.array([2.0, 0.1, 7.0]))
    b = ReplayBuffer(60, OBS, ACT, N, n_step=3, prioritized=prioritized, rng=np.random.default_rng(9))
    b.load_state_dict(a.state_dict())
    x, y = a.sample(500), b.sample(500)
    for u, v in zip(x, y):
        if isinstance(u, torch.Tensor):
            torch.testing.assert_close(u, v, rtol=0, atol=0)
        elif u is not None:
            np.testing.assert_array_equal(u, v)


def test_discontinuity_marks_truncation_and_bootstraps_from_the_stored_successor():
    N = 1
    buf = ReplayBuffer(100, OBS, ACT, N, rng=np.random.default_rng(0))
    obs = np.arange(12, dtype=np.float32).reshape(4, 1, 3)
    nxt = np.concatenate([obs[1:], np.full((1, 1, 3), 99, np.float32)])
    z = np.zeros((4, 1), bool)
    buf.add(Rollout(obs, np.zeros((4, 1, 2), np.float32), np.zeros((4, 1), np.float32), np.ones((4, 1), np.float32),
                    z, z, nxt, ~z))
    restart = np.full((2, 1, 3), -5, np.float32)  # e.g. an env reset after resume
    buf.add(Rollout(restart, np.zeros((2, 1, 2), np.float32), np.zeros((2, 1), np.float32),
                    np.ones((2, 1), np.float32), z[:2], z[:2], restart, ~z[:2]))
    assert buf.truncated[3, 0] and not buf.terminated[3, 0]
    b = buf.sample(200)
    rows = np.flatnonzero(b.obs[:, 0].numpy() == 9)
    assert len(rows) > 0
    np.testing.assert_array_equal(b.next_obs[rows].numpy(), np.full((len(rows), 3), 99))


def test_image_observations_are_stored_once_as_uint8():
    img = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    buf = ReplayBuffer(1000, img, spaces.Discrete(6), 1)
    assert buf.obs.dtype == np.uint8 and buf.obs.nbytes == 1000 * 4 * 84 * 84
    assert not hasattr(buf, "next_obs")


def test_buffer_larger_than_memory_is_refused_with_the_size():
    img = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    with pytest.raises(ConfigError, match=r"buffer_size=100000000 needs .* GiB"):
        ReplayBuffer(100_000_000, img, spaces.Discrete(6), 1)


def frame_stack_stream(rng, steps, N, k=4, p_end=0.06):
    """A FrameStackObservation-like stream: each frame is (time, env, id); an episode's first
    stack repeats its reset frame; the successor of a truncated step is a distinct final stack."""
    obs = np.zeros((steps, N, k, 3), np.float32)
    nxt = np.zeros_like(obs)
    term = rng.random((steps, N)) < p_end
    trunc = (rng.random((steps, N)) < p_end) & ~term
    for e in range(N):
        stack = np.repeat(np.array([[0, e, rng.normal()]], np.float32), k, 0)
        for t in range(steps):
            obs[t, e] = stack
            frame = np.array([[t + 1, e, rng.normal()]], np.float32)
            nxt[t, e] = np.concatenate([stack[1:], frame])
            if term[t, e] or trunc[t, e]:
                stack = np.repeat(np.array([[t + 1, e, rng.normal()]], np.float32), k, 0)  # reset
            else:
                stack = nxt[t, e]
    return obs, nxt, term, trunc


def _frame_rollout(stream, sl, N, A):
    obs, nxt, term, trunc = stream
    c = len(obs[sl])
    return Rollout(obs[sl], A[sl], np.zeros((c, N), np.float32), (np.arange(c * N, dtype=np.float32) % 7
                   ).reshape(c, N), term[sl], trunc[sl], nxt[sl], np.ones((c, N), bool))


@pytest.mark.parametrize("capacity,chunks,prioritized,n_step", [
    (400, [7, 13, 50], False, 1), (60, [17, 23, 40, 3, 1], False, 3), (60, [60, 61, 5], True, 2),
    (9, [4, 4, 4, 4], False, 1)])
def test_frame_stack_storage_samples_what_full_storage_samples(capacity, chunks, prioritized, n_step):
    """Storing one frame per step and rebuilding stacks gives exactly the batches a buffer
    that stores whole stacks gives (same indices), through wrap-around, resets and truncations."""
    rng = np.random.default_rng(3)
    N, k = 3, 4
    stream = frame_stack_stream(rng, sum(chunks), N, k)
    A = rng.normal(size=(sum(chunks), N, 2)).astype(np.float32)
    space = spaces.Box(-np.inf, np.inf, (k, 3), np.float32)
    kw = dict(n_step=n_step, gamma=0.9, prioritized=prioritized)
    full = ReplayBuffer(capacity, space, ACT, N, rng=np.random.default_rng(5), **kw)
    lean = ReplayBuffer(capacity, space, ACT, N, rng=np.random.default_rng(5), frame_stack=k, **kw)
    assert lean.obs.nbytes * k == full.obs.nbytes
    s = 0
    for c in chunks:
        for buf in (full, lean):
            buf.add(_frame_rollout(stream, slice(s, s + c), N, A))
        s += c
        for x, y in zip(full.sample(300), lean.sample(300)):
            if isinstance(x, torch.Tensor):
                torch.testing.assert_close(x, y, rtol=0, atol=0)
            elif x is not None:
                np.testing.assert_array_equal(x, y)
    restored = ReplayBuffer(capacity, space, ACT, N, rng=np.random.default_rng(7), frame_stack=k, **kw)
    restored.load_state_dict(lean.state_dict())
    full.rng = np.random.default_rng(7)
    for x, y in zip(full.sample(300), restored.sample(300)):
        if isinstance(x, torch.Tensor):
            torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_frame_stack_storage_refuses_observations_that_are_not_stacks():
    space = spaces.Box(0, 255, (4, 5, 5), np.uint8)
    with pytest.raises(ConfigError, match="frame_stack=3 needs observations of shape"):
        ReplayBuffer(100, space, spaces.Discrete(2), 1, frame_stack=3)
    buf = ReplayBuffer(100, space, spaces.Discrete(2), 1, frame_stack=4)
    obs = np.random.default_rng(0).integers(0, 255, (6, 1, 4, 5, 5), dtype=np.uint8)  # independent images
    z = np.zeros((6, 1), bool)
    with pytest.raises(ValueError, match="not frame stacks"):
        buf.add(Rollout(obs, np.zeros((6, 1), np.int64), z.astype(np.float32), z.astype(np.float32), z, z, obs, ~z))
