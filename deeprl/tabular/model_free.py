"""Model-free tabular prediction and control (pure NumPy).

CS285 lecture notes: Monte Carlo and temporal-difference policy evaluation, eligibility
traces, SARSA and Q-learning ("Value based methods"), Dyna (model-based RL); the textbook
forms follow Sutton & Barto (2018), chapters 5-8 and 12.

Notation (as in ``deeprl.tabular.dp``): ``V`` (S,) state values, ``Q`` (S, A) action values,
``alpha`` step size, ``gamma`` discount in [0, 1]. A transition is ``(s, a, r, s_next,
terminal)``; ``terminal`` means ``s_next`` ends the episode (its value is 0, nothing is
bootstrapped from it). An episode cut by a time limit is *not* terminal: the TD methods
bootstrap from its last state.

Episodes (``Episode``): ``states`` (T + 1,) s_0 .. s_T, ``actions`` (T,), ``rewards`` (T,)
with r_t received after a_t in s_t, and ``terminated``: whether s_T is terminal. Monte Carlo
methods use the rewards only (an episode cut by a time limit contributes its truncated
return); TD methods bootstrap from V(s_T) unless ``terminated``.

Functions here update their tables in place and return the TD error (control updates) or the
table (episode-level functions). Exploration uses ``rng`` (a ``numpy.random.Generator``);
greedy choices break ties uniformly at random, so an all-zero table does not favour action 0.

- Monte Carlo: ``discounted_returns``, ``first_visit_mask``, ``mc_prediction`` (first- or
  every-visit, sample averages or constant alpha), ``mc_control_update`` (one episode).
- TD prediction: ``td0_update``, ``td_lambda_episode`` (backward view with accumulating or
  replacing traces, online or offline), ``lambda_returns`` (forward view, for reference).
- TD control: ``sarsa_update``, ``expected_sarsa_update``, ``q_learning_update``,
  ``double_q_update``, ``sarsa_lambda_update``.
- Dyna-Q: ``TabularModel`` (maximum-likelihood p(s'|s,a) and r(s,a) from counts) and
  ``dyna_planning`` (K expected Q-learning backups on previously seen pairs).
- Policies: ``epsilon_greedy_probs``, ``epsilon_greedy_action``, ``greedy_action``.
- Simulation with a known model: ``sample_episode(mdp, policy, ...)``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from deeprl.core.errors import ConfigError

TRACES = ("accumulating", "replacing")


class Episode(NamedTuple):
    """One episode: ``states`` (T + 1,), ``actions`` (T,), ``rewards`` (T,), ``terminated``."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool


# ------------------------------------------------------------------------------------------
# Argument checks
# ------------------------------------------------------------------------------------------


def check_alpha(alpha) -> float:
    if not (isinstance(alpha, (int, float, np.floating)) and 0.0 < alpha <= 1.0):
        raise ConfigError(f"alpha (step size) must be a number in (0, 1], got {alpha!r}")
    return float(alpha)


def check_gamma(gamma) -> float:
    if not (isinstance(gamma, (int, float, np.floating)) and 0.0 <= gamma <= 1.0):
        raise ConfigError(f"gamma must be a number in [0, 1], got {gamma!r}")
    return float(gamma)


def check_lambda(lam) -> float:
    if not (isinstance(lam, (int, float, np.floating)) and 0.0 <= lam <= 1.0):
        raise ConfigError(f"lambda must be a number in [0, 1], got {lam!r}")
    return float(lam)


def check_epsilon(epsilon) -> float:
    if not (isinstance(epsilon, (int, float, np.floating)) and 0.0 <= epsilon <= 1.0):
        raise ConfigError(f"epsilon must be a probability in [0, 1], got {epsilon!r}")
    return float(epsilon)


def check_trace(trace: str) -> str:
    if trace not in TRACES:
        raise ConfigError(f"trace must be one of {', '.join(TRACES)}, got {trace!r}")
    return trace


# ------------------------------------------------------------------------------------------
# Policies derived from Q
# ------------------------------------------------------------------------------------------


def greedy_action(q_row: np.ndarray, rng: np.random.Generator) -> int:
    """argmax_a Q(s, a) for one state's row, ties broken uniformly at random."""
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[0]) if best.size == 1 else int(rng.choice(best))


def epsilon_greedy_action(q_row: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """With probability epsilon a uniformly random action, else ``greedy_action``."""
    if epsilon > 0.0 and rng.random() < epsilon:
        return int(rng.integers(q_row.shape[-1]))
    return greedy_action(q_row, rng)


def epsilon_greedy_probs(Q: np.ndarray, epsilon: float) -> np.ndarray:
    """pi(a | s) of ``epsilon_greedy_action``: epsilon / A for every action plus (1 - epsilon)
    shared equally by the maximisers. ``Q`` (..., A) -> probabilities (..., A)."""
    Q = np.asarray(Q, dtype=np.float64)
    best = Q == Q.max(axis=-1, keepdims=True)
    return epsilon / Q.shape[-1] + (1.0 - epsilon) * best / best.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------------------------------
# Monte Carlo
# ------------------------------------------------------------------------------------------


def discounted_returns(rewards, gamma: float) -> np.ndarray:
    """G_t = r_t + gamma r_{t+1} + ... + gamma^{T-1-t} r_{T-1} for every t, (T,) -> (T,)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    G = np.empty_like(rewards)
    acc = 0.0
    for t in range(rewards.size - 1, -1, -1):
        acc = rewards[t] + gamma * acc
        G[t] = acc
    return G


def first_visit_mask(keys) -> np.ndarray:
    """True at the first occurrence of each key (a state, or an encoded state-action pair)."""
    keys = np.asarray(keys)
    mask = np.zeros(keys.size, dtype=bool)
    _, first = np.unique(keys, return_index=True)
    mask[first] = True
    return mask


def mc_prediction(episodes, n_states: int, gamma: float, first_visit: bool = True,
                  alpha: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo estimate of V^pi from episodes generated by pi.

    Each visit to s at time t (only the first one per episode when ``first_visit``) supplies
    the return G_t as a sample of V(s). With ``alpha=None`` V(s) is the average of its samples
    (the incremental mean V <- V + (G - V) / N(s)); otherwise V <- V + alpha (G - V).
    Returns ``(V, N)``: values (S,) (0 where never visited) and sample counts (S,).
    """
    check_gamma(gamma)
    if alpha is not None:
        check_alpha(alpha)
    V = np.zeros(n_states)
    N = np.zeros(n_states, dtype=np.int64)
    for ep in episodes:
        states = np.asarray(ep.states)[: len(ep.rewards)]
        G = discounted_returns(ep.rewards, gamma)
        use = first_visit_mask(states) if first_visit else np.ones(states.size, dtype=bool)
        for s, g in zip(states[use], G[use]):
            N[s] += 1
            V[s] += (g - V[s]) * (alpha if alpha is not None else 1.0 / N[s])
    return V, N


def mc_control_update(Q: np.ndarray, N: np.ndarray, episode: Episode, gamma: float, first_visit: bool = True,
                      alpha: float | None = None) -> np.ndarray:
    """On-policy Monte Carlo control, the evaluation half: Q(s_t, a_t) moves towards the return
    G_t (first visit of each pair per episode, or every visit), by the sample average
    (``alpha=None``, counts in ``N`` (S, A)) or by a constant step. The improvement half is
    acting epsilon-greedily with respect to the updated Q. Returns ``Q``."""
    states = np.asarray(episode.states)[: len(episode.rewards)]
    actions = np.asarray(episode.actions)
    G = discounted_returns(episode.rewards, gamma)
    use = first_visit_mask(states * Q.shape[1] + actions) if first_visit else np.ones(states.size, dtype=bool)
    for s, a, g in zip(states[use], actions[use], G[use]):
        N[s, a] += 1
        Q[s, a] += (g - Q[s, a]) * (alpha if alpha is not None else 1.0 / N[s, a])
    return Q


# ------------------------------------------------------------------------------------------
# TD prediction
# ------------------------------------------------------------------------------------------


def td0_update(V: np.ndarray, s: int, r: float, s_next: int, terminal: bool, alpha: float, gamma: float) -> float:
    """TD(0): V(s) <- V(s) + alpha [r + gamma V(s') - V(s)] (V(s') = 0 when terminal); returns delta."""
    target = r if terminal else r + gamma * V[s_next]
    delta = target - V[s]
    V[s] += alpha * delta
    return float(delta)


def td_lambda_episode(V: np.ndarray, episode: Episode, alpha: float, gamma: float, lam: float,
                      trace: str = "accumulating", online: bool = True) -> np.ndarray:
    """TD(lambda), backward view, over one episode. At every step t

        delta_t = r_t + gamma V(s_{t+1}) - V(s_t)          (V(s_T) = 0 if terminated)
        e(s_t) <- e(s_t) + 1   (accumulating)   or   1   (replacing)
        V <- V + alpha delta_t e,     then     e <- gamma lambda e

    with traces ``e`` (S,) starting at 0. ``online``: V changes after every step; otherwise
    (offline) the deltas use the V from the start of the episode and the summed increments
    are applied at its end. Offline accumulating TD(lambda) equals the offline lambda-return
    algorithm (``lambda_returns``); with lambda = 1 that is every-visit constant-alpha
    Monte Carlo, with lambda = 0 TD(0). Returns ``V``.
    """
    check_trace(trace)
    e = np.zeros_like(V)
    frozen = V.copy() if not online else V
    increment = np.zeros_like(V)
    states, rewards = np.asarray(episode.states), np.asarray(episode.rewards, dtype=np.float64)
    T = rewards.size
    for t in range(T):
        s, s_next = states[t], states[t + 1]
        terminal = episode.terminated and t == T - 1
        delta = rewards[t] + (0.0 if terminal else gamma * frozen[s_next]) - frozen[s]
        if trace == "accumulating":
            e[s] += 1.0
        else:
            e[s] = 1.0
        if online:
            V += alpha * delta * e
        else:
            increment += alpha * delta * e
        e *= gamma * lam
    if not online:
        V += increment
    return V


def lambda_returns(episode: Episode, V: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """Forward view: G^lambda_t = r_t + gamma [(1 - lambda) V(s_{t+1}) + lambda G^lambda_{t+1}],
    with G^lambda_T = V(s_T) (0 if terminated). (T,) targets for V(s_0 .. s_{T-1})."""
    states, rewards = np.asarray(episode.states), np.asarray(episode.rewards, dtype=np.float64)
    T = rewards.size
    values = V[states].astype(np.float64)
    if episode.terminated:
        values[T] = 0.0
    G = np.empty(T)
    nxt = values[T]
    for t in range(T - 1, -1, -1):
        nxt = rewards[t] + gamma * ((1.0 - lam) * values[t + 1] + lam * nxt)
        G[t] = nxt
    return G


# ------------------------------------------------------------------------------------------
# TD control
# ------------------------------------------------------------------------------------------


def sarsa_update(Q, s, a, r, s_next, a_next, terminal, alpha, gamma) -> float:
    """SARSA: Q(s,a) <- Q(s,a) + alpha [r + gamma Q(s',a') - Q(s,a)], a' the next action taken."""
    target = r if terminal else r + gamma * Q[s_next, a_next]
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return float(delta)


def expected_sarsa_update(Q, s, a, r, s_next, terminal, alpha, gamma, epsilon) -> float:
    """Expected SARSA: the target averages Q(s', .) over the epsilon-greedy policy of Q,
    r + gamma sum_a' pi(a'|s') Q(s', a') (epsilon = 0: Q-learning)."""
    target = r if terminal else r + gamma * float(epsilon_greedy_probs(Q[s_next], epsilon) @ Q[s_next])
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return float(delta)


def q_learning_update(Q, s, a, r, s_next, terminal, alpha, gamma) -> float:
    """Q-learning: Q(s,a) <- Q(s,a) + alpha [r + gamma max_a' Q(s',a') - Q(s,a)]."""
    target = r if terminal else r + gamma * Q[s_next].max()
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return float(delta)


def double_q_update(Q1, Q2, s, a, r, s_next, terminal, alpha, gamma, update_first: bool,
                    rng: np.random.Generator) -> float:
    """Double Q-learning (van Hasselt 2010): one table picks the next action, the other values it.
    ``update_first``: Q1(s,a) += alpha [r + gamma Q2(s', argmax_a' Q1(s',a')) - Q1(s,a)];
    otherwise the same with the roles swapped. The caller flips a fair coin for ``update_first``.

    Ties in the argmax are broken at random (``rng``). With a fixed lowest-index rule, a row
    of equal values (an unvisited state) always hands the other table's value of action 0 to
    the target, and on CliffWalking this pins both tables near the "bump into a wall forever"
    value: exploration stalls (about 20x more steps per episode in our runs).
    """
    A, B = (Q1, Q2) if update_first else (Q2, Q1)
    target = r if terminal else r + gamma * B[s_next, greedy_action(A[s_next], rng)]
    delta = target - A[s, a]
    A[s, a] += alpha * delta
    return float(delta)


def sarsa_lambda_update(Q, E, s, a, r, s_next, a_next, terminal, alpha, gamma, lam, trace="accumulating") -> float:
    """SARSA(lambda) with eligibility traces ``E`` (S, A), one step of the backward view:

        delta = r + gamma Q(s',a') - Q(s,a);  E(s,a) += 1 (accumulating) or = 1 (replacing)
        Q <- Q + alpha delta E;  E <- gamma lambda E  (E <- 0 at the end of an episode:
        the caller resets it when ``terminal`` or the episode is cut)."""
    target = r if terminal else r + gamma * Q[s_next, a_next]
    delta = target - Q[s, a]
    if trace == "accumulating":
        E[s, a] += 1.0
    else:
        E[s, a] = 1.0
    Q += alpha * delta * E
    E *= gamma * lam
    return float(delta)


# ------------------------------------------------------------------------------------------
# Dyna-Q
# ------------------------------------------------------------------------------------------


class TabularModel:
    """Maximum-likelihood model from observed transitions: ``counts`` (S, A, S + 1) of next
    states, the last column counting terminal transitions, and ``reward_sum`` (S, A).

        p_hat(s' | s, a) = counts[s, a, s'] / N(s, a),     r_hat(s, a) = reward_sum[s, a] / N(s, a)

    For a deterministic environment this is the textbook Dyna-Q table (last seen s', r); for
    a stochastic one it is its empirical distribution.
    """

    def __init__(self, n_states: int, n_actions: int):
        self.load(np.zeros((n_states, n_actions, n_states + 1), dtype=np.int64), np.zeros((n_states, n_actions)))

    def load(self, counts, reward_sum) -> None:
        """Set the statistics (e.g. from a checkpoint); ``visits`` (S, A) = N(s, a) follows."""
        self.counts = np.array(counts, dtype=np.int64)
        self.reward_sum = np.array(reward_sum, dtype=np.float64)
        self.visits = self.counts.sum(axis=2)

    def update(self, s: int, a: int, r: float, s_next: int, terminal: bool) -> None:
        self.counts[s, a, -1 if terminal else s_next] += 1
        self.reward_sum[s, a] += r
        self.visits[s, a] += 1

    def expected_max_backup(self, Q: np.ndarray, s: int, a: int, gamma: float) -> float:
        """r_hat(s,a) + gamma sum_s' p_hat(s'|s,a) max_a' Q(s',a') (terminal outcomes add 0)."""
        n, total = self.counts[s, a], self.visits[s, a]
        return float(self.reward_sum[s, a] / total + gamma * (n[:-1] @ Q.max(axis=1)) / total)


def dyna_planning(Q: np.ndarray, model: TabularModel, n_updates: int, alpha: float, gamma: float,
                  rng: np.random.Generator) -> None:
    """``n_updates`` planning backups: (s, a) uniformly among the pairs seen so far, then
    Q(s,a) <- Q(s,a) + alpha [r_hat(s,a) + gamma E_{s'~p_hat}[max_a' Q(s',a')] - Q(s,a)]
    (the expected form of the Q-update in the lecture's Dyna)."""
    if n_updates <= 0:
        return
    seen = np.flatnonzero(model.visits.ravel())
    if seen.size == 0:
        return
    n_actions = Q.shape[1]
    for idx in rng.choice(seen, size=n_updates):
        s, a = divmod(int(idx), n_actions)
        Q[s, a] += alpha * (model.expected_max_backup(Q, s, a, gamma) - Q[s, a])


# ------------------------------------------------------------------------------------------
# Simulating a known model
# ------------------------------------------------------------------------------------------


def sample_episode(mdp, policy, rng: np.random.Generator, start, max_steps: int = 1000) -> Episode:
    """One episode of ``policy`` ((S, A) probabilities or (S,) actions) in a ``TabularMDP``,
    from ``start`` (a state, or (S,) start probabilities), until a terminal state or
    ``max_steps`` steps. Rewards are the expected rewards R[s, a] (exact for toy-text tables
    whose reward depends on (s, a) only, e.g. a random walk)."""
    policy = np.asarray(policy)
    probs = np.eye(mdp.n_actions)[policy] if policy.ndim == 1 else np.asarray(policy, dtype=np.float64)
    # inverse-CDF sampling: the first index whose cumulative probability exceeds u * total,
    # u ~ U[0, 1) (total = 1 up to rounding; scaling by it never picks a zero-probability tail)
    cum_pi, cum_P = np.cumsum(probs, axis=1), np.cumsum(mdp.P, axis=2)
    draw = lambda cum: int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))  # noqa: E731
    terminal = mdp.terminal.tolist()
    s = draw(np.cumsum(start)) if np.ndim(start) else int(start)
    states, actions, rewards = [s], [], []
    terminated = terminal[s]
    while not terminated and len(actions) < max_steps:
        a = draw(cum_pi[s])
        s_next = draw(cum_P[s, a])
        actions.append(a)
        rewards.append(float(mdp.R[s, a]))
        states.append(s_next)
        s = s_next
        terminated = terminal[s]
    return Episode(np.array(states), np.array(actions, dtype=np.int64), np.array(rewards), terminated)
