"""Tests for deeprl.core.returns against slow, independent references.

The references below never reuse the implementation's backward recursions: they
cut each stream into explicit episodes (Python lists of indices) and evaluate the
textbook definitions as explicit sums of ``gamma**k * r``. GAE is checked against
its definition as an exponentially weighted average of n-step advantages
(Schulman et al. 2016, eq. 16), with the weight left over at an episode / batch
end going to the longest n-step estimate available there.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from deeprl.core.returns import discounted_return, gae, n_step_returns, normalize, reward_to_go

# --------------------------------------------------------------------------------------
# Brute-force references (1-D streams only; 2-D is handled column by column)
# --------------------------------------------------------------------------------------


def episode_segments(terminated, truncated):
    """List of (indices, end_kind) with end_kind in {"term", "trunc", "batch"}."""
    segments, current = [], []
    for t in range(len(terminated)):
        current.append(t)
        if terminated[t]:
            segments.append((current, "term"))
            current = []
        elif truncated[t]:
            segments.append((current, "trunc"))
            current = []
    if current:
        segments.append((current, "batch"))
    return segments


def segment_of(t, terminated, truncated):
    for idx, kind in episode_segments(terminated, truncated):
        if t in idx:
            return idx, kind
    raise AssertionError("unreachable")


def ref_discounted_return(rewards, terminated, truncated, gamma):
    out = [None] * len(rewards)
    for idx, _ in episode_segments(terminated, truncated):
        total = 0.0
        for k, i in enumerate(idx):
            total += gamma**k * rewards[i]
        for i in idx:
            out[i] = total
    return np.array(out)


def ref_n_step(rewards, terminated, truncated, next_values, gamma, t, n):
    """sum_{k<m} gamma^k r_{t+k} + gamma^m V(s_{t+m}), m = n cut at the episode/batch end."""
    idx, kind = segment_of(t, terminated, truncated)
    remaining = [i for i in idx if i >= t]
    m = min(n, len(remaining))
    total = 0.0
    for k in range(m):
        total += gamma**k * rewards[t + k]
    last = t + m - 1
    if next_values is not None and not terminated[last]:
        total += gamma**m * next_values[last]
    return total


def ref_reward_to_go(rewards, terminated, truncated, gamma, next_values=None):
    T = len(rewards)
    return np.array([ref_n_step(rewards, terminated, truncated, next_values, gamma, t, T + 1)
                     for t in range(T)])


def ref_n_step_returns(rewards, terminated, truncated, next_values, gamma, n):
    return np.array([ref_n_step(rewards, terminated, truncated, next_values, gamma, t, n)
                     for t in range(len(rewards))])


def ref_gae_weighted(rewards, values, next_values, terminated, truncated, gamma, lam):
    """(1 - lam) * sum_{n>=1} lam^(n-1) A^(n)_t with A^(n) = G^(n) - V(s_t).

    Past the L steps left in the episode (or batch) every A^(n) equals A^(L), so
    the infinite sum is (1-lam) sum_{n<L} lam^(n-1) A^(n) + lam^(L-1) A^(L).
    Requires next_values[t] == values[t+1] inside episodes (a consistent critic).
    """
    out = []
    for t in range(len(rewards)):
        idx, _ = segment_of(t, terminated, truncated)
        L = len([i for i in idx if i >= t])
        adv = [ref_n_step(rewards, terminated, truncated, next_values, gamma, t, n) - values[t]
               for n in range(1, L + 1)]
        total = 0.0
        for n in range(1, L):
            total += (1 - lam) * lam ** (n - 1) * adv[n - 1]
        total += lam ** (L - 1) * adv[L - 1]
        out.append(total)
    return np.array(out)


def ref_gae_delta_sum(rewards, values, next_values, terminated, truncated, gamma, lam):
    """sum_{l} (gamma*lam)^l delta_{t+l} over the rest of the episode (any values)."""
    out = []
    for t in range(len(rewards)):
        idx, _ = segment_of(t, terminated, truncated)
        total = 0.0
        for l, i in enumerate(j for j in idx if j >= t):
            boot = 0.0 if terminated[i] else next_values[i]
            delta = rewards[i] + gamma * boot - values[i]
            total += (gamma * lam) ** l * delta
        out.append(total)
    return np.array(out)


# --------------------------------------------------------------------------------------
# Random data generators
# --------------------------------------------------------------------------------------


def random_flags(rng, T, p_end=0.25):
    """Random termination / truncation pattern (never both at one step)."""
    u = rng.random(T)
    terminated = u < p_end / 2
    truncated = (u >= p_end / 2) & (u < p_end)
    return terminated, truncated


def consistent_values(rng, terminated, truncated):
    """values[t] = V(s_t); next_values[t] = values[t+1] inside an episode, the value of
    the (unseen) final observation at episode ends and at the end of the batch."""
    T = len(terminated)
    values = rng.normal(size=T)
    next_values = np.empty(T)
    for t in range(T):
        if terminated[t] or truncated[t] or t == T - 1:
            next_values[t] = rng.normal() * 3.0
        else:
            next_values[t] = values[t + 1]
    return values, next_values


def random_case(seed, T=None):
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 25)) if T is None else T
    p_end = rng.choice([0.0, 0.1, 0.3, 0.7])
    terminated, truncated = random_flags(rng, T, p_end)
    rewards = rng.normal(size=T)
    values, next_values = consistent_values(rng, terminated, truncated)
    gamma = float(rng.choice([0.0, 0.5, 0.9, 0.99, 1.0]))
    lam = float(rng.choice([0.0, 0.3, 0.95, 1.0]))
    return rewards, values, next_values, terminated, truncated, gamma, lam


SEEDS = range(60)

# --------------------------------------------------------------------------------------
# Hand-computed example
#   t        0   1   2   3   4
#   r        1   2   3   4   5
#   term     .   X   .   .   .
#   trunc    .   .   .   X   .
#   V(s')   10  20  30  40  50     gamma = 0.5
# Episode A = {0, 1} terminated, B = {2, 3} truncated (bootstrap 40), C = {4} batch end.
# --------------------------------------------------------------------------------------

R = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
TERM = np.array([0, 1, 0, 0, 0], bool)
TRUNC = np.array([0, 0, 0, 1, 0], bool)
NV = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
G = 0.5


def test_discounted_return_hand_example():
    # A: 1 + .5*2 = 2, B: 3 + .5*4 = 5, C: 5
    np.testing.assert_allclose(discounted_return(R, TERM, TRUNC, G), [2, 2, 5, 5, 5])


def test_reward_to_go_hand_example_without_bootstrap():
    np.testing.assert_allclose(reward_to_go(R, TERM, TRUNC, G), [2, 2, 5, 4, 5])


def test_reward_to_go_hand_example_with_bootstrap():
    # t=3: 4 + .5*40 = 24, t=2: 3 + .5*24 = 15, t=4: 5 + .5*50 = 30; episode A ignores V.
    np.testing.assert_allclose(reward_to_go(R, TERM, TRUNC, G, next_values=NV), [2, 2, 15, 24, 30])


def test_n_step_hand_example():
    # n=2: t0: 1 + .5*2 (terminated at 1, no bootstrap) = 2; t1: 2;
    #      t2: 3 + .5*4 + .25*40 = 15; t3: 4 + .5*40 = 24; t4: 5 + .5*50 = 30
    np.testing.assert_allclose(n_step_returns(R, TERM, TRUNC, NV, G, 2), [2, 2, 15, 24, 30])
    # n=1 on the same data: r + gamma * (1 - term) * V'
    np.testing.assert_allclose(n_step_returns(R, TERM, TRUNC, NV, G, 1), [6, 2, 18, 24, 30])


def test_gae_hand_example():
    values = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    nv = np.array([2.0, 99.0, 4.0, 40.0, 50.0])  # consistent inside episodes
    # deltas: t0 1+.5*2-1=1, t1 2-2=0 (terminated), t2 3+.5*4-3=2, t3 4+.5*40-4=20, t4 5+25-6=24
    lam = 0.5  # gamma*lam = .25
    expected = [1 + 0.25 * 0, 0, 2 + 0.25 * 20, 20, 24]
    np.testing.assert_allclose(gae(R, values, nv, TERM, TRUNC, G, lam), expected)


# --------------------------------------------------------------------------------------
# Single episode, closed forms
# --------------------------------------------------------------------------------------


def test_single_complete_episode_closed_form():
    T, gamma = 7, 0.9
    r = np.arange(1.0, T + 1)
    term = np.zeros(T, bool)
    term[-1] = True
    trunc = np.zeros(T, bool)
    expected_rtg = [sum(gamma ** (k - t) * r[k] for k in range(t, T)) for t in range(T)]
    np.testing.assert_allclose(reward_to_go(r, term, trunc, gamma), expected_rtg)
    # terminal: next_values must not matter at all
    np.testing.assert_allclose(
        reward_to_go(r, term, trunc, gamma, next_values=np.full(T, 1e6)), expected_rtg)
    np.testing.assert_allclose(discounted_return(r, term, trunc, gamma),
                               np.full(T, expected_rtg[0]))


def test_constant_reward_geometric_series():
    T, gamma = 50, 0.95
    r = np.ones(T)
    term = np.zeros(T, bool)
    term[-1] = True
    rtg = reward_to_go(r, term, np.zeros(T, bool), gamma)
    expected = (1 - gamma ** (T - np.arange(T))) / (1 - gamma)
    np.testing.assert_allclose(rtg, expected)


def test_gamma_one_is_plain_sum():
    r = np.array([3.0, -1.0, 2.0, 5.0])
    term = np.array([0, 0, 0, 1], bool)
    trunc = np.zeros(4, bool)
    np.testing.assert_allclose(reward_to_go(r, term, trunc, 1.0), [9, 6, 7, 5])
    np.testing.assert_allclose(discounted_return(r, term, trunc, 1.0), [9, 9, 9, 9])


def test_gamma_zero_is_immediate_reward():
    rng = np.random.default_rng(0)
    r = rng.normal(size=10)
    term, trunc = random_flags(rng, 10, 0.4)
    nv = rng.normal(size=10)
    np.testing.assert_allclose(reward_to_go(r, term, trunc, 0.0, next_values=nv), r)
    np.testing.assert_allclose(n_step_returns(r, term, trunc, nv, 0.0, 3), r)


def test_batch_ending_mid_episode_bootstraps_from_last_next_value():
    r = np.array([1.0, 1.0, 1.0])
    flags = np.zeros(3, bool)
    nv = np.array([7.0, 7.0, 10.0])
    gamma = 0.5
    # without bootstrap the sum just stops; with it, + gamma^(T-t) * V(s_T)
    np.testing.assert_allclose(reward_to_go(r, flags, flags, gamma), [1.75, 1.5, 1.0])
    np.testing.assert_allclose(reward_to_go(r, flags, flags, gamma, next_values=nv),
                               [1.75 + 0.125 * 10, 1.5 + 0.25 * 10, 1.0 + 0.5 * 10])
    # the last, unfinished episode of discounted_return is summed as far as it goes
    np.testing.assert_allclose(discounted_return(r, flags, flags, gamma), [1.75] * 3)


def test_first_step_of_new_episode_does_not_leak_into_previous():
    r = np.array([1.0, 100.0])
    nv = np.array([3.0, 0.0])
    for term, trunc, expect0 in [([1, 0], [0, 0], 1.0), ([0, 0], [1, 0], 1.0 + 0.9 * 3.0)]:
        term, trunc = np.array(term, bool), np.array(trunc, bool)
        out = reward_to_go(r, term, trunc, 0.9, next_values=nv)
        assert out[0] == pytest.approx(expect0)
        out = gae(r, np.zeros(2), nv, term, trunc, 0.9, 1.0)
        assert out[0] == pytest.approx(expect0)
        out = n_step_returns(r, term, trunc, nv, 0.9, 5)
        assert out[0] == pytest.approx(expect0)


# --------------------------------------------------------------------------------------
# Termination vs truncation
# --------------------------------------------------------------------------------------


def _two_episode_batch():
    r = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    end = np.zeros(6, bool)
    end[2] = True  # first episode ends after step 2
    return r, end


@pytest.mark.parametrize("fn", ["rtg", "nstep", "gae"])
def test_termination_ignores_next_value(fn):
    r, end = _two_episode_batch()
    none = np.zeros(6, bool)
    nv_a = np.arange(6.0)
    nv_b = nv_a.copy()
    nv_b[2] = 1e9  # only the terminal step's next value differs
    values = np.arange(6.0) * 0.1

    def run(nv):
        if fn == "rtg":
            return reward_to_go(r, end, none, 0.9, next_values=nv)
        if fn == "nstep":
            return n_step_returns(r, end, none, nv, 0.9, 4)
        return gae(r, values, nv, end, none, 0.9, 0.8)

    np.testing.assert_allclose(run(nv_a), run(nv_b))


@pytest.mark.parametrize("fn", ["rtg", "nstep", "gae"])
def test_truncation_bootstraps_from_next_value(fn):
    """Raising V(s') at the truncated step by d raises the estimate at step t of that
    episode by exactly gamma^(2-t+1) * d (times lambda^(2-t) for GAE), and nothing else."""
    r, end = _two_episode_batch()
    none = np.zeros(6, bool)
    gamma, lam, d = 0.9, 0.8, 10.0
    nv_a = np.arange(6.0)
    nv_b = nv_a.copy()
    nv_b[2] += d
    values = np.arange(6.0) * 0.1

    def run(nv):
        if fn == "rtg":
            return reward_to_go(r, none, end, gamma, next_values=nv)
        if fn == "nstep":
            return n_step_returns(r, none, end, nv, gamma, 10)
        return gae(r, values, nv, none, end, gamma, lam)

    diff = run(nv_b) - run(nv_a)
    steps_left = np.array([3, 2, 1])
    expected = gamma**steps_left * d
    if fn == "gae":
        expected = expected * lam ** (steps_left - 1)
    np.testing.assert_allclose(diff[:3], expected)
    np.testing.assert_allclose(diff[3:], 0.0, atol=1e-12)


def test_truncation_and_termination_differ_only_by_bootstrap():
    rng = np.random.default_rng(3)
    r = rng.normal(size=8)
    end = np.zeros(8, bool)
    end[[2, 5]] = True
    none = np.zeros(8, bool)
    nv = rng.normal(size=8)
    as_term = reward_to_go(r, end, none, 0.7, next_values=nv)
    as_trunc = reward_to_go(r, none, end, 0.7, next_values=nv)
    assert not np.allclose(as_term[:6], as_trunc[:6])
    # both bootstrap the unfinished last episode the same way
    np.testing.assert_allclose(as_term[6:], as_trunc[6:])
    # discounted_return has no bootstrap: both kinds of episode end are the same
    np.testing.assert_allclose(discounted_return(r, end, none, 0.7), discounted_return(r, none, end, 0.7))


def test_terminal_last_step_of_batch_does_not_bootstrap():
    r = np.array([1.0, 1.0])
    term = np.array([0, 1], bool)
    none = np.zeros(2, bool)
    nv = np.array([0.0, 1000.0])
    np.testing.assert_allclose(reward_to_go(r, term, none, 0.5, next_values=nv), [1.5, 1.0])
    np.testing.assert_allclose(n_step_returns(r, term, none, nv, 0.5, 3), [1.5, 1.0])
    np.testing.assert_allclose(gae(r, np.zeros(2), nv, term, none, 0.5, 1.0), [1.5, 1.0])


# --------------------------------------------------------------------------------------
# Identities between estimators
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_gae_lambda_zero_is_one_step_td_error(seed):
    rng = np.random.default_rng(seed)
    T = 15
    r, v, nv = rng.normal(size=T), rng.normal(size=T), rng.normal(size=T)  # arbitrary V
    term, trunc = random_flags(rng, T, 0.4)
    gamma = 0.9
    td = np.array([r[t] + gamma * (0.0 if term[t] else nv[t]) - v[t] for t in range(T)])
    np.testing.assert_allclose(gae(r, v, nv, term, trunc, gamma, 0.0), td)


@pytest.mark.parametrize("seed", range(10))
def test_gae_lambda_one_is_reward_to_go_minus_values(seed):
    rng = np.random.default_rng(100 + seed)
    T = 15
    r = rng.normal(size=T)
    term, trunc = random_flags(rng, T, 0.3)
    v, nv = consistent_values(rng, term, trunc)
    gamma = 0.95
    np.testing.assert_allclose(
        gae(r, v, nv, term, trunc, gamma, 1.0),
        reward_to_go(r, term, trunc, gamma, next_values=nv) - v, atol=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_n_step_with_n_at_least_T_is_bootstrapped_reward_to_go(seed):
    rng = np.random.default_rng(200 + seed)
    T = int(rng.integers(1, 20))
    r, nv = rng.normal(size=T), rng.normal(size=T)
    term, trunc = random_flags(rng, T, 0.3)
    rtg = reward_to_go(r, term, trunc, 0.9, next_values=nv)
    for n in (T, T + 1, 3 * T + 5):
        np.testing.assert_allclose(n_step_returns(r, term, trunc, nv, 0.9, n), rtg, atol=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_n_step_one_is_td_target(seed):
    rng = np.random.default_rng(300 + seed)
    T = 12
    r, nv = rng.normal(size=T), rng.normal(size=T)
    term, trunc = random_flags(rng, T, 0.4)
    gamma = 0.8
    expected = r + gamma * (1.0 - term) * nv
    np.testing.assert_allclose(n_step_returns(r, term, trunc, nv, gamma, 1), expected)


def test_gae_plus_values_is_lambda_return_bootstrapped_target():
    """advantages + values are the TD(lambda) targets: for lambda=0 the 1-step target."""
    rng = np.random.default_rng(7)
    T = 10
    r = rng.normal(size=T)
    term, trunc = random_flags(rng, T, 0.3)
    v, nv = consistent_values(rng, term, trunc)
    np.testing.assert_allclose(gae(r, v, nv, term, trunc, 0.9, 0.0) + v,
                               n_step_returns(r, term, trunc, nv, 0.9, 1))


def test_n_step_rejects_nonpositive_n():
    x = np.zeros(3)
    f = np.zeros(3, bool)
    for n in (0, -1):
        with pytest.raises(ValueError):
            n_step_returns(x, f, f, x, 0.9, n)


# --------------------------------------------------------------------------------------
# Randomised property tests against the brute-force references
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_random_discounted_return(seed):
    r, _, _, term, trunc, gamma, _ = random_case(seed)
    np.testing.assert_allclose(discounted_return(r, term, trunc, gamma),
                               ref_discounted_return(r, term, trunc, gamma), atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_reward_to_go(seed):
    r, _, nv, term, trunc, gamma, _ = random_case(seed)
    np.testing.assert_allclose(reward_to_go(r, term, trunc, gamma),
                               ref_reward_to_go(r, term, trunc, gamma), atol=1e-12)
    np.testing.assert_allclose(reward_to_go(r, term, trunc, gamma, next_values=nv),
                               ref_reward_to_go(r, term, trunc, gamma, nv), atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_n_step_returns(seed):
    r, _, nv, term, trunc, gamma, _ = random_case(seed)
    nv = np.random.default_rng(seed + 10_000).normal(size=len(r))  # need not be consistent
    for n in (1, 2, 3, 5, 8):
        np.testing.assert_allclose(n_step_returns(r, term, trunc, nv, gamma, n),
                                   ref_n_step_returns(r, term, trunc, nv, gamma, n), atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_gae_vs_weighted_n_step_advantages(seed):
    r, v, nv, term, trunc, gamma, lam = random_case(seed)
    for lam_ in {lam, 0.5}:
        np.testing.assert_allclose(gae(r, v, nv, term, trunc, gamma, lam_),
                                   ref_gae_weighted(r, v, nv, term, trunc, gamma, lam_), atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_gae_vs_explicit_delta_sum_arbitrary_values(seed):
    r, _, _, term, trunc, gamma, lam = random_case(seed)
    rng = np.random.default_rng(seed + 20_000)
    v, nv = rng.normal(size=len(r)), rng.normal(size=len(r))  # inconsistent critic
    np.testing.assert_allclose(gae(r, v, nv, term, trunc, gamma, lam),
                               ref_gae_delta_sum(r, v, nv, term, trunc, gamma, lam), atol=1e-10)


def test_weighted_and_delta_sum_references_agree():
    """Sanity check of the two GAE references on consistent data (guards the test itself)."""
    for seed in range(10):
        r, v, nv, term, trunc, gamma, lam = random_case(seed)
        np.testing.assert_allclose(ref_gae_weighted(r, v, nv, term, trunc, gamma, lam),
                                   ref_gae_delta_sum(r, v, nv, term, trunc, gamma, lam), atol=1e-10)


# --------------------------------------------------------------------------------------
# 2-D (T, N) inputs: each column is an independent stream
# --------------------------------------------------------------------------------------


def _random_batch_2d(seed, T=13, N=5):
    rng = np.random.default_rng(seed)
    term = np.zeros((T, N), bool)
    trunc = np.zeros((T, N), bool)
    values = np.zeros((T, N))
    next_values = np.zeros((T, N))
    for j in range(N):
        term[:, j], trunc[:, j] = random_flags(rng, T, [0.0, 0.2, 0.5, 0.9, 0.3][j % 5])
        values[:, j], next_values[:, j] = consistent_values(rng, term[:, j], trunc[:, j])
    rewards = rng.normal(size=(T, N))
    return rewards, values, next_values, term, trunc


@pytest.mark.parametrize("seed", range(5))
def test_2d_equals_columnwise(seed):
    r, v, nv, term, trunc = _random_batch_2d(seed)
    gamma, lam = 0.9, 0.7
    cols = range(r.shape[1])
    col = lambda f: np.stack([f(j) for j in cols], axis=1)  # noqa: E731

    np.testing.assert_allclose(discounted_return(r, term, trunc, gamma),
                               col(lambda j: ref_discounted_return(r[:, j], term[:, j], trunc[:, j], gamma)),
                               atol=1e-12)
    np.testing.assert_allclose(reward_to_go(r, term, trunc, gamma),
                               col(lambda j: reward_to_go(r[:, j], term[:, j], trunc[:, j], gamma)))
    np.testing.assert_allclose(reward_to_go(r, term, trunc, gamma, next_values=nv),
                               col(lambda j: ref_reward_to_go(r[:, j], term[:, j], trunc[:, j], gamma, nv[:, j])),
                               atol=1e-12)
    for n in (1, 3, 20):
        np.testing.assert_allclose(
            n_step_returns(r, term, trunc, nv, gamma, n),
            col(lambda j, n=n: ref_n_step_returns(r[:, j], term[:, j], trunc[:, j], nv[:, j], gamma, n)),
            atol=1e-12)
    np.testing.assert_allclose(
        gae(r, v, nv, term, trunc, gamma, lam),
        col(lambda j: ref_gae_weighted(r[:, j], v[:, j], nv[:, j], term[:, j], trunc[:, j], gamma, lam)),
        atol=1e-10)
    np.testing.assert_allclose(
        gae(r, v, nv, term, trunc, gamma, lam),
        col(lambda j: gae(r[:, j], v[:, j], nv[:, j], term[:, j], trunc[:, j], gamma, lam)))


def test_2d_output_shapes_and_dtype():
    r, v, nv, term, trunc = _random_batch_2d(0, T=6, N=3)
    for out in (discounted_return(r, term, trunc, 0.9), reward_to_go(r, term, trunc, 0.9, nv),
                n_step_returns(r, term, trunc, nv, 0.9, 2), gae(r, v, nv, term, trunc, 0.9, 0.9)):
        assert out.shape == (6, 3)
        assert out.dtype == np.float64


def test_accepts_python_lists_and_int_flags_and_does_not_mutate():
    r = [1, 2, 3, 4]
    term = [0, 1, 0, 0]
    trunc = [0, 0, 0, 0]
    nv = [5.0, 6.0, 7.0, 8.0]
    v = [0.5, 0.5, 0.5, 0.5]
    snapshot = [list(x) for x in (r, term, trunc, nv, v)]
    np.testing.assert_allclose(reward_to_go(r, term, trunc, 0.5, next_values=nv),
                               ref_reward_to_go(np.array(r, float), np.array(term, bool),
                                                np.array(trunc, bool), 0.5, np.array(nv)))
    gae(r, v, nv, term, trunc, 0.5, 0.5)
    n_step_returns(r, term, trunc, nv, 0.5, 2)
    assert [list(x) for x in (r, term, trunc, nv, v)] == snapshot

    arrays = [np.array(x, float) for x in (r, nv, v)]
    copies = [a.copy() for a in arrays]
    reward_to_go(arrays[0], term, trunc, 0.5, next_values=arrays[1])
    gae(arrays[0], arrays[2], arrays[1], term, trunc, 0.5, 0.5)
    n_step_returns(arrays[0], term, trunc, arrays[1], 0.5, 3)
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c)


# --------------------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------------------


def test_normalize_matches_scipy_zscore():
    x = np.random.default_rng(0).normal(3.0, 5.0, size=(40, 3))
    out = normalize(x)
    np.testing.assert_allclose(out, stats.zscore(x, axis=None), atol=1e-7)
    assert abs(out.mean()) < 1e-12
    assert out.std() == pytest.approx(1.0, abs=1e-7)


def test_normalize_constant_input_is_finite_zero():
    out = normalize(np.full(5, 2.5))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, 0.0)
