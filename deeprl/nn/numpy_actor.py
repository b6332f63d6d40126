"""The forward pass of an MLP actor in NumPy, for acting on a handful of environments.

Collecting experience calls the policy on batches of 1-16 observations thousands of times.
At that size torch's per-op dispatch (a few microseconds for each of ~15 ops) costs several
times the arithmetic, while the same maths in NumPy costs about a microsecond per op. The
weights are NumPy views of the torch parameters (no copy), taken once per rollout, so the
NumPy policy always acts with the current weights.

Supported: ``deeprl.nn.policies.Actor`` with a flatten encoder (vector observations), an MLP
body of Linear/Tanh/ReLU layers, and a Categorical or state-independent diagonal Gaussian
head. Anything else returns None from :func:`numpy_actor`, and callers act through torch.
"""
from __future__ import annotations

import numpy as np
from torch import nn

from deeprl.nn.networks import FlattenEncoder, Tanh

LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def numpy_actor(actor, rng: np.random.Generator):
    """A function ``obs (B, d) float32 -> (actions, log_probs)`` sampling from ``actor``'s
    distribution with ``rng``, or None if the actor is not a supported MLP."""
    if actor is None or not isinstance(getattr(actor, "encoder", None), FlattenEncoder):
        return None
    if getattr(actor, "squash", False) or getattr(actor, "state_dependent_std", False):
        return None
    layers = []
    for m in actor.body:
        if isinstance(m, nn.Linear):
            layers.append(("linear", m.weight.detach().numpy().T, m.bias.detach().numpy()))
        elif isinstance(m, (Tanh, nn.Tanh)):
            layers.append(("tanh", None, None))
        elif isinstance(m, nn.ReLU):
            layers.append(("relu", None, None))
        else:
            return None
    discrete = actor.discrete
    log_std = None if discrete else actor.log_std.detach().numpy()

    def act(obs: np.ndarray):
        h = obs.reshape(obs.shape[0], -1)
        for kind, w, b in layers:
            if kind == "linear":
                h = h @ w + b
            elif kind == "tanh":
                np.tanh(h, out=h)
            else:
                np.maximum(h, 0, out=h)
        if discrete:  # Gumbel-max sample from log-softmax(h)
            z = h - h.max(-1, keepdims=True)
            logp_all = z - np.log(np.exp(z).sum(-1, keepdims=True))
            u = rng.random(h.shape, dtype=np.float32).clip(1e-20, 1.0)
            a = (logp_all - np.log(-np.log(u))).argmax(-1)
            return a, np.take_along_axis(logp_all, a[:, None], -1)[:, 0]
        std = np.exp(log_std)
        eps = rng.standard_normal(h.shape, dtype=np.float32)
        a = h + std * eps
        return a, (-0.5 * eps**2 - log_std - LOG_SQRT_2PI).sum(-1)

    return act
