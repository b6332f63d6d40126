"""Small helpers the tabular agents share (plain functions, no base class).

Every tabular agent keeps its tables as NumPy arrays in ``extra_state()`` (no torch modules),
acts through ``Agent.act`` with a batch of integer observations, and collects with an
epsilon-greedy NumPy behaviour policy driven by the agent's own ``rng``.
"""
from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from deeprl.core.errors import SpaceError
from deeprl.core.schedules import scheduled
from deeprl.nn.acting import Policy
from deeprl.tabular.model_free import epsilon_greedy_action

# The env steps between metrics rows when the run does not set log_every: a row per update
# (often one env step) would cost more than the update itself.
LOG_EVERY = 1000


def table_shape(algo: str, env_id: str, obs_space, act_space) -> tuple[int, int]:
    """(S, A) of a finite MDP, or a one-line SpaceError saying what a tabular method needs."""
    ok = (isinstance(obs_space, spaces.Discrete) and isinstance(act_space, spaces.Discrete)
          and obs_space.start == 0 and act_space.start == 0)
    if not ok:
        raise SpaceError(f"{algo} is tabular: it needs Discrete observation and action spaces (starting at 0), "
                         f"e.g. FrozenLake-v1, CliffWalking-v1, Taxi-v4 or deeprl/GridWorld-v0; {env_id} has "
                         f"observation space {_short(obs_space)} and action space {_short(act_space)}")
    return int(obs_space.n), int(act_space.n)


def _short(space) -> str:
    """A space's name without its bounds: ``Box(4,)``, ``Discrete(2)``."""
    if isinstance(space, spaces.Box):
        return f"Box{space.shape}"
    return str(space) if len(str(space)) <= 40 else type(space).__name__


def states_of(obs) -> np.ndarray:
    """A batch of Discrete observations (tensor or array) as an int64 array."""
    if isinstance(obs, torch.Tensor):
        obs = obs.detach().cpu().numpy()
    return np.asarray(obs).astype(np.int64).reshape(-1)


def table_act(Q: np.ndarray, obs, deterministic: bool, epsilon: float, rng: np.random.Generator):
    """``Agent.act`` for a Q table: greedy (lowest index on ties) when ``deterministic``, else
    epsilon-greedy. Returns (actions, log-probs) as tensors; log-probs of the chosen actions
    under the epsilon-greedy policy (None for the greedy one)."""
    s = states_of(obs)
    if deterministic:
        a = np.argmax(Q[s], axis=1)
        return torch.as_tensor(a), None
    a, logp = epsilon_greedy(Q, s, epsilon, rng)
    return torch.as_tensor(a), torch.as_tensor(logp)


def epsilon_greedy(Q: np.ndarray, states: np.ndarray, epsilon: float, rng: np.random.Generator):
    """Epsilon-greedy actions for a batch of states (greedy ties broken at random) and their
    log-probabilities (of the action, under the epsilon-greedy policy)."""
    actions = np.array([epsilon_greedy_action(Q[s], epsilon, rng) for s in states], dtype=np.int64)
    rows = Q[states]
    best = rows == rows.max(axis=1, keepdims=True)
    n_actions = Q.shape[1]
    p = epsilon / n_actions + (1.0 - epsilon) * best[np.arange(len(states)), actions] / best.sum(axis=1)
    return actions, np.log(p).astype(np.float32)


class EpsilonGreedyTable(Policy):
    """The collector's policy for a Q-table: epsilon-greedy actions and their log-probabilities.
    ``Q`` is the table itself (no copy: the collector acts between updates); a snapshot copies it."""

    def __init__(self, Q: np.ndarray, epsilon: float, rng: np.random.Generator):
        self.Q, self.epsilon, self.rng = Q, epsilon, rng

    def __call__(self, obs):
        return epsilon_greedy(self.Q, states_of(obs), self.epsilon, self.rng)


def epsilon_at(cfg, progress: float) -> float:
    """``epsilon`` decaying linearly to ``epsilon_final`` over the first ``epsilon_decay``
    fraction of training (constant when ``epsilon_final`` is None)."""
    if cfg.epsilon_final is None:
        return cfg.epsilon
    frac = min(progress / cfg.epsilon_decay, 1.0) if cfg.epsilon_decay > 0 else 1.0
    return cfg.epsilon + (cfg.epsilon_final - cfg.epsilon) * frac


def learning_rate_at(cfg, progress: float) -> float:
    """``learning_rate``, constant or decaying linearly to 0 (``learning_rate_schedule``)."""
    return scheduled(cfg.learning_rate, cfg.learning_rate_schedule, progress)


def steps_of(batch):
    """The transitions of a Rollout in time order, envs in index order within a step:
    yields ``(t, i, s, a, r, s_next, terminated, truncated)`` with Python scalars."""
    T, N = batch.rewards.shape
    obs, nxt = batch.obs.reshape(T, N).tolist(), batch.next_obs.reshape(T, N).tolist()
    actions, rewards = batch.actions.reshape(T, N).tolist(), batch.rewards.tolist()
    term, trunc, valid = batch.terminated.tolist(), batch.truncated.tolist(), batch.valid.tolist()
    for t in range(T):
        for i in range(N):
            if valid[t][i]:
                yield t, i, int(obs[t][i]), int(actions[t][i]), rewards[t][i], int(nxt[t][i]), term[t][i], trunc[t][i]


def ema(average: float, delta: float, weight: float = 0.01) -> float:
    """Exponential moving average of |TD error| for the metrics rows."""
    return (1.0 - weight) * average + weight * abs(delta)


def tabular_model(algo: str, env_id: str):
    """The known model of a toy-text-style environment: ``(TabularMDP, start probabilities (S,))``
    (uniform when the env does not say). One-line SpaceError when it has no table ``P``."""
    from deeprl.envs.make import make_env
    from deeprl.tabular.mdp import from_gym

    env = make_env(env_id)
    try:
        try:
            mdp = from_gym(env)
        except SpaceError as e:
            raise SpaceError(f"{algo} plans with the known model of {env_id}: {e}") from None
        n = mdp.n_states - 1
        start = getattr(env.unwrapped, "initial_state_distrib", None)
        start = np.full(n, 1.0 / n) if start is None else np.asarray(start, dtype=np.float64).reshape(n)
    finally:
        env.close()
    return mdp, start


# ------------------------------------------------------------------------------------------
# Bandits
# ------------------------------------------------------------------------------------------

BANDIT_STATE = ("counts", "values", "alpha", "beta", "post_mean", "post_var")  # arrays of the algorithms


def bandit_env(algo: str, env_id: str):
    """The unwrapped bandit of ``env_id`` (its arm means give the regret), or a one-line SpaceError."""
    from deeprl.envs.bandits import BanditEnv
    from deeprl.envs.make import make_env

    env = make_env(env_id)
    env.close()
    bandit = env.unwrapped
    if not isinstance(bandit, BanditEnv):
        raise SpaceError(f"{algo} is a multi-armed bandit algorithm: it needs a bandit env with known arm means "
                         f"(deeprl/BernoulliBandit-v0 or deeprl/GaussianBandit-v0); {env_id} is "
                         f"{type(bandit).__name__}")
    return bandit


class BanditPolicy(Policy):
    """The collector's policy: ``algorithm.select(t, rng)`` for each env's next play t, counting
    from the ``plays`` made so far."""

    def __init__(self, algorithm, plays: int, rng: np.random.Generator):
        self.algorithm, self.plays, self.rng = algorithm, plays, rng

    def __call__(self, obs):
        n = len(obs)
        arms = np.array([self.algorithm.select(self.plays + i + 1, self.rng) for i in range(n)], dtype=np.int64)
        self.plays += n
        return arms, None


def bandit_act(algorithm, obs, deterministic: bool, plays: int, rng):
    """``Agent.act`` for a bandit: the arm with the best sample mean (lowest index on ties)
    when ``deterministic``, else the algorithm's own choice."""
    n = len(obs)
    if deterministic:
        a = np.full(n, int(np.argmax(algorithm.values)))
    else:
        a = np.array([algorithm.select(plays + i + 1, rng) for i in range(n)], dtype=np.int64)
    return torch.as_tensor(a), None


class Regret:
    """Expected regret of the arms played: sum over plays of mu* - mu_a (the reward noise taken out)."""

    def __init__(self, gaps: np.ndarray):
        self.gaps = np.asarray(gaps, dtype=np.float64)
        self.total, self.plays, self.optimal = 0.0, 0, 0

    def record(self, arm: int) -> None:
        self.total += float(self.gaps[arm])
        self.plays += 1
        self.optimal += int(self.gaps[arm] == 0.0)

    def metrics(self) -> dict:
        return {"regret/cumulative": self.total, "regret/per_play": self.total / max(self.plays, 1),
                "bandit/optimal_arm_fraction": self.optimal / max(self.plays, 1)}

    def summary(self) -> dict:
        return {"cumulative_regret": self.total, "plays": self.plays,
                "optimal_arm_fraction": self.optimal / max(self.plays, 1)}

    def state(self) -> np.ndarray:
        return np.array([self.total, float(self.plays), float(self.optimal)])

    def load(self, state) -> None:
        s = np.asarray(state, dtype=np.float64)
        self.total, self.plays, self.optimal = float(s[0]), int(s[1]), int(s[2])


def bandit_update(algorithm, regret: Regret, batch) -> dict:
    """Feed every (arm, reward) of a Rollout to the algorithm in time order and record the regret."""
    T, N = batch.rewards.shape
    arms, rewards, valid = batch.actions.reshape(T, N).tolist(), batch.rewards.tolist(), batch.valid.tolist()
    for t in range(T):
        for i in range(N):
            if valid[t][i]:
                algorithm.update(int(arms[t][i]), float(rewards[t][i]))
                regret.record(int(arms[t][i]))
    return regret.metrics()


def bandit_state(algorithm, regret: Regret) -> dict:
    state = {k: getattr(algorithm, k) for k in BANDIT_STATE if hasattr(algorithm, k)}
    return {**state, "regret": regret.state()}


def load_bandit_state(algorithm, regret: Regret, state: dict) -> None:
    for k in BANDIT_STATE:
        if hasattr(algorithm, k):
            current = getattr(algorithm, k)
            setattr(algorithm, k, np.array(state[k], dtype=current.dtype))
    regret.load(state["regret"])
