"""Dynamic programming with known dynamics (pure NumPy functions).

CS285 lecture notes, "Value based methods" (policy iteration, value iteration) and the
soft-optimality lectures (soft value iteration). Notation, for a ``TabularMDP`` with ``S``
states and ``A`` actions:

- ``V``       (S,)   state values V(s).
- ``Q``       (S, A) action values Q(s, a) = r(s, a) + gamma * E_{s' ~ p(.|s,a)}[V(s')].
- ``policy``  (S, A) probabilities pi(a | s), rows summing to 1; the policies these functions
              return as "deterministic" are (S,) integer actions pi(s), and every function
              taking a policy also accepts that form.
- terminal states have V = 0: nothing is bootstrapped from them (see ``deeprl.tabular.mdp``).

Discount: every function requires 0 <= gamma < 1. Then each Bellman backup is a
gamma-contraction in the max norm, so the iterations converge and the linear systems are
non-singular even when some policy never ends an episode (which gamma = 1 would allow).

Stopping rule of the iterative solvers: they stop after the first sweep ``V_{k+1} = T V_k``
with ``max_s |V_{k+1}(s) - V_k(s)| <= tol * (1 - gamma) / gamma``. For a gamma-contraction
``T`` with fixed point ``V_T``, ``||V_{k+1} - V_T|| <= gamma / (1 - gamma) * ||V_{k+1} - V_k||``,
so the returned values are within ``tol`` of the exact fixed point in every state. A
threshold below float64 resolution (about 1e-16 * max|V|) is still met once the sweeps land
on an exact floating-point fixed point, which they do in practice; if ``max_iter`` sweeps pass
first, the solvers raise RuntimeError.

Bad hyperparameters (gamma, temperature, tol, max_iter) raise ``ConfigError``; a malformed
policy or value array raises ValueError.
"""
from __future__ import annotations

import numpy as np

from deeprl.core.errors import ConfigError
from deeprl.tabular.mdp import TabularMDP

# ------------------------------------------------------------------------------------------
# Argument checks
# ------------------------------------------------------------------------------------------


def _check_gamma(gamma: float) -> None:
    if not 0.0 <= gamma < 1.0:
        raise ConfigError(f"gamma must be in [0, 1) so that the Bellman backups converge, got {gamma!r}")


def _check_iteration(tol: float, max_iter: int) -> None:
    if not (np.isfinite(tol) and tol > 0):
        raise ConfigError(f"tol must be a finite number > 0, got {tol!r}")
    if int(max_iter) < 1:
        raise ConfigError(f"max_iter must be >= 1, got {max_iter!r}")


def _check_temperature(temperature: float) -> None:
    if not (np.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")


def _converged(V_next: np.ndarray, V: np.ndarray, gamma: float, tol: float) -> bool:
    """The stopping rule of the module docstring: ``||V_{k+1} - V_k||_inf <= tol (1 - gamma) / gamma``."""
    return gamma == 0.0 or np.max(np.abs(V_next - V)) <= tol * (1.0 - gamma) / gamma


def _not_converged(name: str, max_iter: int, tol: float) -> RuntimeError:
    return RuntimeError(f"{name} did not reach tol={tol!r} in max_iter={max_iter} sweeps; raise tol or max_iter")


# ------------------------------------------------------------------------------------------
# Policies and one-step look-ahead
# ------------------------------------------------------------------------------------------


def deterministic_policy(actions, n_actions: int) -> np.ndarray:
    """(S,) integer actions pi(s) -> (S, A) one-hot probabilities pi(a | s)."""
    actions = np.asarray(actions)
    if actions.ndim != 1 or not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(f"actions must be a 1-D integer array, got dtype {actions.dtype} and shape {actions.shape}")
    if ((actions < 0) | (actions >= n_actions)).any():
        raise ValueError(f"actions must lie in 0..{n_actions - 1}")
    return np.eye(n_actions)[actions]


def _policy_probs(mdp: TabularMDP, policy) -> np.ndarray:
    """Validated (S, A) probabilities from (S,) integer actions or (S, A) probabilities."""
    policy = np.asarray(policy)
    if policy.ndim == 1:
        if policy.shape != (mdp.n_states,):
            raise ValueError(f"a deterministic policy must have shape (S,) = {(mdp.n_states,)}, got {policy.shape}")
        return deterministic_policy(policy, mdp.n_actions)
    policy = policy.astype(np.float64)
    if policy.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"policy must have shape (S, A) = {(mdp.n_states, mdp.n_actions)}, got {policy.shape}")
    if not np.isfinite(policy).all() or (policy < 0).any() or (np.abs(policy.sum(axis=1) - 1.0) > 1e-8).any():
        raise ValueError("policy rows must be probabilities: non-negative and summing to 1 (within 1e-8)")
    return policy


def q_from_v(mdp: TabularMDP, V, gamma: float) -> np.ndarray:
    """One-step look-ahead ``Q(s, a) = r(s, a) + gamma * sum_{s'} p(s' | s, a) V(s')``.

    ``V`` (S,) -> ``Q`` (S, A). Terminal states count as V = 0 whatever ``V`` holds there,
    so ``Q(s, a) = 0`` in a terminal state ``s``.
    """
    _check_gamma(gamma)
    V = np.asarray(V, dtype=np.float64)
    if V.shape != (mdp.n_states,):
        raise ValueError(f"V must have shape (S,) = {(mdp.n_states,)}, got {V.shape}")
    return mdp.R + gamma * (mdp.P @ np.where(mdp.terminal, 0.0, V))


def greedy_policy(Q) -> np.ndarray:
    """``pi(s) = argmax_a Q(s, a)`` as (S,) integer actions; ties go to the lowest action."""
    return np.argmax(np.asarray(Q), axis=1)


def _markov_chain(mdp: TabularMDP, policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chain a policy induces: ``P_pi[s, s'] = sum_a pi(a|s) p(s'|s,a)`` (S, S) and
    ``R_pi[s] = sum_a pi(a|s) r(s, a)`` (S,), with transitions into terminal states dropped
    (their value is 0, so nothing is bootstrapped from them)."""
    P_pi = np.einsum("sa,sat->st", policy, mdp.P)
    P_pi[:, mdp.terminal] = 0.0
    return P_pi, np.sum(policy * mdp.R, axis=1)


# ------------------------------------------------------------------------------------------
# Policy evaluation
# ------------------------------------------------------------------------------------------


def policy_evaluation(mdp: TabularMDP, policy, gamma: float, tol: float = 1e-10, max_iter: int = 100_000) -> np.ndarray:
    """V^pi by iterating the Bellman expectation backup from V_0 = 0:

        V_{k+1}(s) = sum_a pi(a|s) [ r(s, a) + gamma * sum_{s'} p(s'|s,a) V_k(s') ]

    ``policy`` (S, A) probabilities or (S,) actions -> ``V`` (S,), within ``tol`` of V^pi
    (stopping rule in the module docstring).
    """
    _check_gamma(gamma)
    _check_iteration(tol, max_iter)
    P_pi, R_pi = _markov_chain(mdp, _policy_probs(mdp, policy))
    V = np.zeros(mdp.n_states)
    for _ in range(int(max_iter)):
        V_next = R_pi + gamma * (P_pi @ V)
        converged = _converged(V_next, V, gamma, tol)
        V = V_next
        if converged:
            return V
    raise _not_converged("policy_evaluation", max_iter, tol)


def policy_evaluation_exact(mdp: TabularMDP, policy, gamma: float) -> np.ndarray:
    """V^pi as the solution of the linear Bellman expectation equation

        V = R_pi + gamma P_pi V   <=>   (I - gamma P_pi) V = R_pi

    with ``P_pi``, ``R_pi`` the chain of ``_markov_chain`` (non-singular for gamma < 1).
    ``policy`` (S, A) probabilities or (S,) actions -> ``V`` (S,).
    """
    _check_gamma(gamma)
    P_pi, R_pi = _markov_chain(mdp, _policy_probs(mdp, policy))
    return np.linalg.solve(np.eye(mdp.n_states) - gamma * P_pi, R_pi)


# ------------------------------------------------------------------------------------------
# Optimal control
# ------------------------------------------------------------------------------------------


def policy_iteration(mdp: TabularMDP, gamma: float, max_iter: int = 10_000) -> tuple[np.ndarray, np.ndarray, int]:
    """Policy iteration: alternate exact evaluation and greedy improvement.

        evaluate   V^pi = (I - gamma P_pi)^{-1} R_pi,   Q^pi = r + gamma P V^pi
        improve    pi'(s) = argmax_a Q^pi(s, a)       (= argmax_a A^pi(s, a))

    starting from ``pi(s) = 0``, until the greedy step changes no action. A state keeps its
    action unless another one is better by more than 1e-12 * (1 + max|Q|), so rounding noise
    between tied actions cannot make it cycle. Returns ``(V*, pi*, iterations)``: values (S,),
    deterministic optimal policy (S,) ints, and the number of evaluations (the last one
    confirms that the policy is stable). Converges in finitely many steps (at most A^S).
    """
    _check_gamma(gamma)
    _check_iteration(1.0, max_iter)
    states = np.arange(mdp.n_states)
    actions = np.zeros(mdp.n_states, dtype=np.int64)
    for iteration in range(1, int(max_iter) + 1):
        V = policy_evaluation_exact(mdp, actions, gamma)
        Q = q_from_v(mdp, V, gamma)
        best = greedy_policy(Q)
        tie_tol = 1e-12 * (1.0 + np.max(np.abs(Q)))
        improves = Q[states, best] > Q[states, actions] + tie_tol
        if not improves.any():
            return V, actions, iteration
        actions = np.where(improves, best, actions)
    raise RuntimeError(f"policy_iteration did not stabilise in max_iter={max_iter} improvements")


def value_iteration(
    mdp: TabularMDP, gamma: float, tol: float = 1e-10, max_iter: int = 100_000
) -> tuple[np.ndarray, np.ndarray, int]:
    """Value iteration: iterate the Bellman optimality backup from V_0 = 0,

        Q_k(s, a) = r(s, a) + gamma * sum_{s'} p(s'|s,a) V_k(s'),    V_{k+1}(s) = max_a Q_k(s, a)

    until ``max|V_{k+1} - V_k| <= tol (1 - gamma) / gamma``, so that ``max|V - V*| <= tol``.
    Returns ``(V, pi, iterations)``: values (S,), the greedy policy of ``q_from_v(V)`` as (S,)
    ints (its value is within ``2 gamma tol / (1 - gamma)`` of V*), and the number of sweeps.
    """
    _check_gamma(gamma)
    _check_iteration(tol, max_iter)
    V = np.zeros(mdp.n_states)
    for iteration in range(1, int(max_iter) + 1):
        V_next = q_from_v(mdp, V, gamma).max(axis=1)
        converged = _converged(V_next, V, gamma, tol)
        V = V_next
        if converged:
            return V, greedy_policy(q_from_v(mdp, V, gamma)), iteration
    raise _not_converged("value_iteration", max_iter, tol)


# ------------------------------------------------------------------------------------------
# Soft optimality
# ------------------------------------------------------------------------------------------


def soft_max(Q, temperature: float) -> np.ndarray:
    """``temperature * log sum_a exp(Q(s, a) / temperature)`` per state, (S, A) -> (S,).

    Computed with the max shift ``m(s) = max_a Q(s, a)``:
    ``m + temperature * log sum_a exp((Q - m) / temperature)``, so no exponent overflows.
    Lies between ``max_a Q`` and ``max_a Q + temperature * log A``.
    """
    _check_temperature(temperature)
    Q = np.asarray(Q, dtype=np.float64)
    m = Q.max(axis=1, keepdims=True)
    return (m + temperature * np.log(np.sum(np.exp((Q - m) / temperature), axis=1, keepdims=True)))[:, 0]


def boltzmann_policy(Q, temperature: float) -> np.ndarray:
    """``pi(a | s) = exp((Q(s, a) - soft_max(Q)(s)) / temperature)``, i.e. softmax(Q / temperature)
    per state, (S, A) -> (S, A) probabilities."""
    _check_temperature(temperature)
    Q = np.asarray(Q, dtype=np.float64)
    z = np.exp((Q - Q.max(axis=1, keepdims=True)) / temperature)
    return z / z.sum(axis=1, keepdims=True)


def soft_value_iteration(
    mdp: TabularMDP, gamma: float, temperature: float, tol: float = 1e-10, max_iter: int = 100_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft value iteration (maximum-entropy RL with temperature alpha), from V_0 = 0:

        Q_k(s, a) = r(s, a) + gamma * sum_{s'} p(s'|s,a) V_k(s')
        V_{k+1}(s) = alpha * log sum_a exp(Q_k(s, a) / alpha)        (V = 0 in terminal states)
        pi(a | s)  = exp((Q(s, a) - V(s)) / alpha)

    The soft maximum is 1-Lipschitz, so the backup is a gamma-contraction and the stopping
    rule of the module docstring applies (``max|V - V_soft| <= tol``). The policy maximises
    ``E[sum_t gamma^t (r_t + alpha H(pi(.|s_t)))]``, the entropy bonus stopping at terminal
    states. As alpha -> 0, V decreases to V* (``0 <= V - V* <= alpha log A / (1 - gamma)``)
    and pi to a greedy policy. As alpha -> inf, pi tends to uniform only where every action
    leads to the same expected future entropy, e.g. when no terminal state can be reached;
    otherwise the entropy bonus (about alpha log A per step) makes it favour actions that keep
    the episode going, and the preference does not vanish with alpha.
    Returns ``(V, Q, pi)`` with shapes (S,), (S, A), (S, A); ``pi`` is uniform in terminal states.
    """
    _check_gamma(gamma)
    _check_temperature(temperature)
    _check_iteration(tol, max_iter)
    V = np.zeros(mdp.n_states)
    for _ in range(int(max_iter)):
        V_next = np.where(mdp.terminal, 0.0, soft_max(q_from_v(mdp, V, gamma), temperature))
        converged = _converged(V_next, V, gamma, tol)
        V = V_next
        if converged:
            Q = q_from_v(mdp, V, gamma)
            return V, Q, boltzmann_policy(Q, temperature)
    raise _not_converged("soft_value_iteration", max_iter, tol)
