"""Running statistics, observation normalisation, reward scaling and schedules, each checked
against an independent brute-force reference (plain NumPy over everything seen so far).

RunningMeanStd starts with a pseudo-count ``epsilon = 1e-4`` of mean 0 and variance 1; the
references below include that pseudo-sample exactly, as a weighted data set
{(0-mean, 1-var) with weight eps} U {x_i with weight 1}:

    mean = (sum x_i) / (eps + n)
    var  = (eps * (1 + (0 - mean)^2) + sum (x_i - mean)^2) / (eps + n)
"""
from __future__ import annotations

import numpy as np
import pytest

from deeprl.core.schedules import SCHEDULES, scheduled
from deeprl.nn.normalize import ObsNormalizer, RewardScaler, RunningMeanStd

EPS_COUNT = 1e-4


# --------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------


def ref_mean_var(data: np.ndarray, eps_count: float = EPS_COUNT):
    """Mean/var of ``data`` (rows are samples) plus the pseudo-sample of mean 0, var 1."""
    data = np.asarray(data, np.float64)
    n = data.shape[0]
    total = eps_count + n
    mean = data.sum(0) / total
    var = (eps_count * (1.0 + mean**2) + ((data - mean) ** 2).sum(0)) / total
    return mean, var


def make_batches(rng, sizes, shape):
    return [rng.normal(loc=3.0, scale=2.0, size=(s,) + shape) for s in sizes]


# --------------------------------------------------------------------------------------
# RunningMeanStd
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (3,), (2, 4)])
def test_running_mean_std_matches_concatenation(shape):
    rng = np.random.default_rng(0)
    sizes = [1, 7, 1, 32, 2, 1, 100, 5]
    rms = RunningMeanStd(shape)
    seen = []
    for b in make_batches(rng, sizes, shape):
        rms.update(b)
        seen.append(b)
        data = np.concatenate(seen)
        mean, var = ref_mean_var(data)
        np.testing.assert_allclose(rms.mean, mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(rms.var, var, rtol=1e-10, atol=1e-12)
        assert rms.count == pytest.approx(EPS_COUNT + data.shape[0], rel=1e-12)
        assert rms.mean.shape == shape and rms.var.shape == shape
    # and, with many samples, the pseudo-count is negligible: plain numpy statistics
    np.testing.assert_allclose(rms.mean, data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(rms.var, data.var(0), rtol=1e-5)


def test_running_mean_std_single_sample_batches():
    """Batches of one row (b_var = 0) are folded in correctly, one at a time."""
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(50, 2)) * [1.0, 10.0] + [-5.0, 5.0]
    rms = RunningMeanStd((2,))
    for i in range(len(xs)):
        rms.update(xs[i:i + 1])
    mean, var = ref_mean_var(xs)
    np.testing.assert_allclose(rms.mean, mean, rtol=1e-10)
    np.testing.assert_allclose(rms.var, var, rtol=1e-10)


def test_running_mean_std_initial_state_and_order_independence():
    rms = RunningMeanStd((3,))
    np.testing.assert_array_equal(rms.mean, np.zeros(3))
    np.testing.assert_array_equal(rms.var, np.ones(3))
    assert rms.count == EPS_COUNT
    rng = np.random.default_rng(2)
    data = rng.normal(size=(40, 3))
    a, b = RunningMeanStd((3,)), RunningMeanStd((3,))
    a.update(data)
    for chunk in (data[:1], data[1:13], data[13:14], data[14:]):
        b.update(chunk)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
    np.testing.assert_allclose(a.var, b.var, rtol=1e-12)


def test_running_mean_std_state_dict_round_trip():
    rng = np.random.default_rng(3)
    rms = RunningMeanStd((4,))
    for b in make_batches(rng, [3, 1, 9], (4,)):
        rms.update(b)
    state = rms.state_dict()
    # the state is a copy: later updates do not alter it
    saved_mean = state["mean"].copy()
    other = RunningMeanStd((4,))
    other.load_state_dict(state)
    # loading does not alias the dict's arrays
    alias = {"mean": state["mean"].copy(), "var": state["var"].copy(), "count": state["count"]}
    probe = RunningMeanStd((4,))
    probe.load_state_dict(alias)
    alias["mean"][:] = 123.0
    alias["var"][:] = 123.0
    np.testing.assert_array_equal(probe.mean, rms.mean)
    np.testing.assert_array_equal(probe.var, rms.var)
    np.testing.assert_array_equal(other.mean, rms.mean)
    np.testing.assert_array_equal(other.var, rms.var)
    assert other.count == rms.count
    rms.update(rng.normal(size=(5, 4)))
    np.testing.assert_array_equal(state["mean"], saved_mean)
    # the loaded copy continues identically
    nxt = rng.normal(size=(6, 4))
    rms2 = RunningMeanStd((4,))
    rms2.load_state_dict(state)
    rms2.update(nxt)
    other.update(nxt)
    np.testing.assert_array_equal(other.mean, rms2.mean)
    np.testing.assert_array_equal(other.var, rms2.var)


# --------------------------------------------------------------------------------------
# ObsNormalizer
# --------------------------------------------------------------------------------------


def test_obs_normalizer_formula_dtype_and_clipping():
    rng = np.random.default_rng(4)
    norm = ObsNormalizer((3,), clip=2.5, eps=1e-8)
    seen = []
    for size in (1, 4, 16):
        x = rng.normal(loc=[0.0, 100.0, -3.0], scale=[1.0, 50.0, 1e-3], size=(size, 3))
        norm.update(x)
        out = norm(x)
        seen.append(x)
        mean, var = ref_mean_var(np.concatenate(seen))
        expected = np.clip((x - mean) / np.sqrt(var + 1e-8), -2.5, 2.5)
        assert out.dtype == np.float32 and out.shape == x.shape
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # far-away observations hit the clip exactly, on both sides
    far = np.array([[1e6, 1e6, 1e6], [-1e6, -1e6, -1e6]])
    out = norm(far)
    np.testing.assert_array_equal(out, np.array([[2.5] * 3, [-2.5] * 3], np.float32))
    # inside the clip range nothing is clipped
    inside = norm(np.concatenate(seen))
    assert np.abs(inside).max() <= 2.5


def test_obs_normalizer_call_leaves_statistics_unchanged():
    rng = np.random.default_rng(5)
    norm = ObsNormalizer((2,))
    norm.update(rng.normal(size=(8, 2)))
    before = {k: np.copy(v) for k, v in norm.state_dict().items()}
    x = rng.normal(loc=50.0, size=(10, 2))
    out1, out2 = norm(x), norm(x)
    after = norm.state_dict()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
    np.testing.assert_array_equal(out1, out2)
    # whereas update does move them
    norm.update(x)
    assert not np.allclose(norm.state_dict()["mean"], before["mean"])


def test_obs_normalizer_state_dict_round_trip():
    rng = np.random.default_rng(6)
    a = ObsNormalizer((3,), clip=5.0)
    a.update(rng.normal(size=(20, 3)) * 7 + 2)
    b = ObsNormalizer((3,), clip=5.0)
    b.load_state_dict(a.state_dict())
    x = rng.normal(size=(4, 3))
    np.testing.assert_array_equal(a(x), b(x))


# --------------------------------------------------------------------------------------
# RewardScaler
# --------------------------------------------------------------------------------------


class RefRewardScaler:
    """Brute force: keeps every R value ever seen and recomputes the variance from scratch;
    steps one env at a time, skipping invalid steps."""

    def __init__(self, num_envs, gamma, clip=10.0, eps=1e-8):
        self.ret = [0.0] * num_envs
        self.history: list[float] = []
        self.gamma, self.clip, self.eps = gamma, clip, eps

    def batch(self, rewards, dones, valid=None):
        T, n = rewards.shape
        for t in range(T):
            for i in range(n):
                if valid is not None and not valid[t, i]:
                    continue
                self.ret[i] = self.gamma * self.ret[i] + float(rewards[t, i])
                self.history.append(self.ret[i])
                if dones[t, i]:
                    self.ret[i] = 0.0
        _, var = ref_mean_var(np.array(self.history))
        return np.clip(rewards / np.sqrt(var + self.eps), -self.clip, self.clip)


def scaled(scaler, rewards, dones, valid=None):
    scaler.update(rewards, dones, valid)
    return scaler.scale(rewards)


@pytest.mark.parametrize("with_valid", [False, True])
def test_reward_scaler_matches_brute_force_reference(with_valid):
    rng = np.random.default_rng(7)
    N, gamma = 3, 0.9
    scaler, ref = RewardScaler(N, gamma), RefRewardScaler(N, gamma)
    for k, T in enumerate((1, 5, 17, 2, 30)):
        rewards = rng.normal(loc=1.0, scale=3.0, size=(T, N))
        dones = rng.random((T, N)) < 0.15
        valid = rng.random((T, N)) < 0.7 if with_valid else None
        out = scaled(scaler, rewards, dones, valid)
        expected = ref.batch(rewards, dones, valid)
        np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12, err_msg=f"batch {k}")
        np.testing.assert_allclose(scaler.ret, ref.ret, rtol=1e-12, atol=1e-12)
        assert scaler.rms.count == pytest.approx(EPS_COUNT + len(ref.history), rel=1e-12)


def test_reward_scaler_return_accumulates_per_env_and_resets_after_done():
    scaler = RewardScaler(2, gamma=0.5)
    scaler.update(np.array([[1.0, 2.0]]), np.array([[False, False]]))
    np.testing.assert_allclose(scaler.ret, [1.0, 2.0])
    scaler.update(np.array([[1.0, 2.0]]), np.array([[False, True]]))
    # env 0 keeps accumulating (0.5 * 1 + 1); env 1 accumulated 0.5 * 2 + 2 = 3 then reset
    np.testing.assert_allclose(scaler.ret, [1.5, 0.0])
    assert scaler.rms.count == pytest.approx(EPS_COUNT + 4)
    # the variance used the pre-reset value 3.0 of env 1
    _, var = ref_mean_var(np.array([1.0, 2.0, 1.5, 3.0]))
    np.testing.assert_allclose(scaler.rms.var, var, rtol=1e-12)
    scaler.update(np.array([[4.0, 4.0]]), np.array([[True, False]]))
    np.testing.assert_allclose(scaler.ret, [0.0, 4.0])  # env 1 restarted from 0
    # an invalid step neither advances the accumulator nor counts
    scaler.update(np.array([[9.0, 9.0]]), np.array([[True, True]]), np.array([[False, True]]))
    np.testing.assert_allclose(scaler.ret, [0.0, 0.0])
    assert scaler.rms.count == pytest.approx(EPS_COUNT + 7)


def test_reward_scaler_one_batch_equals_its_steps_one_at_a_time():
    """The statistics after a batch do not depend on how it was split (Chan's update is exact)."""
    rng = np.random.default_rng(9)
    rewards, dones = rng.normal(size=(40, 2)), rng.random((40, 2)) < 0.1
    a, b = RewardScaler(2, 0.97), RewardScaler(2, 0.97)
    a.update(rewards, dones)
    for t in range(40):
        b.update(rewards[t:t + 1], dones[t:t + 1])
    np.testing.assert_allclose(a.rms.var, b.rms.var, rtol=1e-10)
    np.testing.assert_array_equal(a.ret, b.ret)


def test_reward_scaler_clips():
    scaler = RewardScaler(1, gamma=0.99, clip=0.5)
    # tiny variance (constant returns) makes the ratio huge; the output is clipped at +-clip
    scaler.update(np.zeros((5, 1)), np.ones((5, 1), bool))
    assert scaler.scale(np.array([1000.0]))[0] == 0.5
    assert scaler.scale(np.array([-1e9]))[0] == -0.5


def test_reward_scaler_state_dict_round_trip():
    rng = np.random.default_rng(8)
    a = RewardScaler(2, 0.95)
    a.update(rng.normal(size=(10, 2)), rng.random((10, 2)) < 0.3)
    b = RewardScaler(2, 0.95)
    b.load_state_dict(a.state_dict())
    r, d = rng.normal(size=(3, 2)), np.array([[False, True]] * 3)
    np.testing.assert_array_equal(scaled(a, r, d), scaled(b, r, d))
    np.testing.assert_array_equal(a.ret, b.ret)


# --------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------


def test_schedule_constant():
    for p in (-1.0, 0.0, 0.3, 1.0, 2.0):
        assert scheduled(3e-4, "constant", p) == 3e-4
        assert scheduled(3e-4, "constant", p, final=1.0) == 3e-4


@pytest.mark.parametrize("progress,expected", [(0.0, 0.2), (0.5, 0.1), (1.0, 0.0), (0.25, 0.15)])
def test_schedule_linear_to_zero(progress, expected):
    assert scheduled(0.2, "linear", progress) == pytest.approx(expected, abs=1e-15)


def test_schedule_linear_to_final_and_clamping():
    assert scheduled(1.0, "linear", 0.5, final=0.5) == pytest.approx(0.75)
    assert scheduled(1.0, "linear", 0.0, final=3.0) == pytest.approx(1.0)
    assert scheduled(1.0, "linear", 1.0, final=3.0) == pytest.approx(3.0)
    # progress outside [0, 1] clamps to the end points
    assert scheduled(0.2, "linear", -0.5) == pytest.approx(0.2)
    assert scheduled(0.2, "linear", 1.7) == pytest.approx(0.0)
    assert scheduled(1.0, "linear", 5.0, final=0.25) == pytest.approx(0.25)


def test_schedule_unknown_kind_raises():
    assert set(SCHEDULES) == {"constant", "linear"}
    with pytest.raises(ValueError, match="cosine"):
        scheduled(1.0, "cosine", 0.5)
    with pytest.raises(ValueError):
        scheduled(1.0, "Linear", 0.5)
