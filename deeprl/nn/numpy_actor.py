"""The forward pass of an MLP actor in NumPy, for acting on a handful of environments.

Collecting experience calls the policy on batches of 1-16 observations thousands of times.
At that size torch's per-op dispatch (a few microseconds for each of ~15 ops) costs several
times the arithmetic, while the same maths in NumPy costs about a microsecond per op. The
weights are NumPy views of the torch parameters (no copy), so the NumPy policy always acts
with the current weights; a pickled or deep-copied one holds a copy (a policy snapshot).

Supported: ``deeprl.nn.policies.Actor`` with a flatten encoder (vector observations), an MLP
body of Linear/Tanh/ReLU layers, and a Categorical or state-independent diagonal Gaussian
head. Anything else returns None from :func:`numpy_actor`, and callers act through torch.
"""
from __future__ import annotations

import copy

import numpy as np
from torch import nn

from deeprl.nn.networks import FlattenEncoder, Tanh

LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def numpy_actor(actor, rng: np.random.Generator):
    """A :class:`NumpyActor` sampling from ``actor``'s distribution with ``rng``, or None if the
    actor is not a supported MLP."""
    if actor is None or not isinstance(getattr(actor, "encoder", None), FlattenEncoder):
        return None
    if getattr(actor, "squash", False) or getattr(actor, "state_dependent_std", False):
        return None
    forward = numpy_mlp(actor.body)
    if forward is None:
        return None
    return NumpyActor(forward, None if actor.discrete else actor.log_std.detach().numpy(), rng)


class NumpyActor:
    """``obs (B, d) float32 -> (actions, log_probs)``: a Categorical (``log_std`` None; Gumbel-max
    sampling) or diagonal Gaussian policy on the outputs of ``forward``, drawing from ``rng``.
    Picklable: a pickled or deep-copied actor holds copies of the weights and of the generator."""

    def __init__(self, forward, log_std, rng: np.random.Generator):
        self.forward, self.log_std, self.rng = forward, log_std, rng

    def __call__(self, obs: np.ndarray):
        h = self.forward(obs.reshape(obs.shape[0], -1))
        if self.log_std is None:  # Gumbel-max sample from log-softmax(h)
            z = h - h.max(-1, keepdims=True)
            logp_all = z - np.log(np.exp(z).sum(-1, keepdims=True))
            u = self.rng.random(h.shape, dtype=np.float32).clip(1e-20, 1.0)
            a = (logp_all - np.log(-np.log(u))).argmax(-1)
            return a, np.take_along_axis(logp_all, a[:, None], -1)[:, 0]
        log_std = self.log_std
        std = np.exp(log_std)
        eps = self.rng.standard_normal(h.shape, dtype=np.float32)
        a = h + std * eps
        return a, (-0.5 * eps**2 - log_std - LOG_SQRT_2PI).sum(-1)

    def snapshot(self):
        return copy.deepcopy(self)


def numpy_mlp(seq: nn.Sequential):
    """A :class:`NumpyMLP` for a Sequential of Linear/Tanh/ReLU layers (an empty one is the
    identity), on views of the current weights; None for anything else."""
    layers = []
    for m in seq:
        if isinstance(m, nn.Linear):
            layers.append(("linear", m.weight.detach().numpy().T, m.bias.detach().numpy()))
        elif isinstance(m, (Tanh, nn.Tanh)):
            layers.append(("tanh", None, None))
        elif isinstance(m, nn.ReLU):
            layers.append(("relu", None, None))
        else:
            return None
    return NumpyMLP(layers)


class NumpyMLP:
    """``h -> seq(h)`` in NumPy. The weights are views of the torch parameters (the current
    weights, no copy); pickling or deep-copying copies them (a snapshot)."""

    def __init__(self, layers):
        self.layers = layers

    def __call__(self, h: np.ndarray) -> np.ndarray:
        for kind, w, b in self.layers:
            if kind == "linear":
                h = h @ w + b
            elif kind == "tanh":
                h = np.tanh(h)
            else:
                h = np.maximum(h, 0)
        return h


def numpy_q_values(q_net):
    """A :class:`NumpyQ` for a deeprl QNetwork with a flatten encoder and plain or dueling heads
    (not noisy or distributional); None otherwise."""
    if not isinstance(getattr(q_net, "encoder", None), FlattenEncoder) or q_net.noisy_layers or q_net.n_atoms > 1:
        return None
    parts = [numpy_mlp(q_net.torso), numpy_mlp(q_net.advantage),
             numpy_mlp(q_net.value) if q_net.value is not None else None]
    if parts[0] is None or parts[1] is None or (q_net.value is not None and parts[2] is None):
        return None
    return NumpyQ(*parts)


class NumpyQ:
    """``obs (B, d) -> Q(obs, .) (B, A)`` in NumPy: torso, advantage head, optional value head
    (dueling: V + A - mean A)."""

    def __init__(self, torso, advantage, value=None):
        self.torso, self.advantage, self.value = torso, advantage, value

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        h = self.torso(obs.reshape(obs.shape[0], -1))
        a = self.advantage(h)
        return a if self.value is None else self.value(h) + a - a.mean(1, keepdims=True)
