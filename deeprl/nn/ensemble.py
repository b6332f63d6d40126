"""Ensembles of Q-functions Q_e(s, a), e = 1..E, evaluated as one batched network.

Twin critics (TD3, SAC) and REDQ-style ensembles run every member in the same kernel
(``baddbmm`` over an (E, in, out) weight), so two critics cost about one: on small MLPs the
per-op overhead, not the arithmetic, dominates. Members are initialised independently,
each like ``nn.Linear``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from deeprl.core.errors import SpaceError
from deeprl.nn.networks import ACTIVATIONS, FlattenEncoder, make_encoder


class EnsembleLinear(nn.Module):
    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features).uniform_(-bound, bound))

    def forward(self, x, members: slice = slice(None)):
        """(B, in) shared by all members, or (E, B, in) per member -> (E, B, out); ``members``
        evaluates only some of them."""
        w, b = self.weight[members], self.bias[members]
        if w.shape[-1] == 1:  # a value head: a broadcast product beats a bmm with one column
            return (x * w.transpose(1, 2)).sum(-1, keepdim=True) + b
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(w.shape[0], -1, -1)
        return torch.baddbmm(b, x, w)


class QEnsemble(nn.Module):
    """E state-action value functions on vector observations: forward(obs, act) -> (E, B)."""

    def __init__(self, obs_space, act_space: spaces.Box, members: int = 2, hidden=(256, 256),
                 activation: str = "relu"):
        super().__init__()
        self.encoder = make_encoder(obs_space)
        if not isinstance(self.encoder, FlattenEncoder):
            raise SpaceError(f"continuous-action critics support vector observations, not {obs_space}")
        self.members = members
        d = self.encoder.out_dim + int(np.prod(act_space.shape))
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [EnsembleLinear(members, d, h), ACTIVATIONS[activation]()]
            d = h
        layers.append(EnsembleLinear(members, d, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, obs, actions, members: slice = slice(None)):
        """(E, B) values, or (len(members), B) for a slice of the members (TD3's actor uses Q_1)."""
        x = torch.cat([self.encoder(obs), actions], dim=-1)
        for layer in self.body:
            x = layer(x, members) if isinstance(layer, EnsembleLinear) else layer(x)
        return x.squeeze(-1).float()  # float32 even under bfloat16 autocast

    def member(self, e: int) -> "QEnsemble":
        """A one-member view sharing nothing (a copy), for tests and inspection."""
        out = QEnsemble.__new__(QEnsemble)
        nn.Module.__init__(out)
        out.encoder, out.members = self.encoder, 1
        layers = []
        for m in self.body:
            if isinstance(m, EnsembleLinear):
                lin = EnsembleLinear.__new__(EnsembleLinear)
                nn.Module.__init__(lin)
                lin.weight = nn.Parameter(m.weight[e:e + 1].detach().clone())
                lin.bias = nn.Parameter(m.bias[e:e + 1].detach().clone())
                layers.append(lin)
            else:
                layers.append(m)
        out.body = nn.Sequential(*layers)
        return out


class DeterministicActor(nn.Module):
    """mu(s) in the action bounds: low + (tanh(MLP(s)) + 1) / 2 * (high - low)."""

    def __init__(self, obs_space, act_space: spaces.Box, hidden=(256, 256), activation="relu"):
        super().__init__()
        self.encoder = make_encoder(obs_space)
        if not isinstance(self.encoder, FlattenEncoder):
            raise SpaceError(f"continuous-action actors support vector observations, not {obs_space}")
        layers: list[nn.Module] = []
        d = self.encoder.out_dim
        for h in hidden:
            layers += [nn.Linear(d, h), ACTIVATIONS[activation]()]
            d = h
        layers.append(nn.Linear(d, int(np.prod(act_space.shape))))
        self.body = nn.Sequential(*layers)
        low, high = act_space.low.astype(np.float32), act_space.high.astype(np.float32)
        self.register_buffer("scale", torch.as_tensor((high - low) / 2))
        self.register_buffer("center", torch.as_tensor((high + low) / 2))

    def forward(self, obs):
        return self.center + self.scale * torch.tanh(self.body(self.encoder(obs)).float())
