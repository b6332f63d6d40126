"""Stochastic actors and state-value critics built from an observation encoder and an MLP."""
from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from deeprl.core.errors import SpaceError
from deeprl.nn.distributions import Categorical, DiagGaussian, TanhGaussian
from deeprl.nn.networks import make_encoder, mlp


def check_action_space(space: spaces.Space, algo: str, supported=(spaces.Discrete, spaces.Box)) -> None:
    if not isinstance(space, supported) or (isinstance(space, spaces.Box) and len(space.shape) != 1):
        names = ", ".join(s.__name__ + (" (1-D)" if s is spaces.Box else "") for s in supported)
        raise SpaceError(f"{algo} does not support action space {space}; supported: {names}")


class Actor(nn.Module):
    """pi(a|s): Categorical for Discrete actions; for Box, a diagonal Gaussian (state-independent
    ``log_std`` parameter, or state-dependent from the network) or a tanh-squashed Gaussian that
    respects the action bounds.
    """

    def __init__(self, obs_space, act_space, hidden=(64, 64), activation="tanh", ortho_init=True,
                 log_std_init=0.0, state_dependent_std=False, squash=False):
        super().__init__()
        self.encoder = make_encoder(obs_space)
        self.discrete = isinstance(act_space, spaces.Discrete)
        self.state_dependent_std = state_dependent_std and not self.discrete
        self.squash = squash and not self.discrete
        if self.discrete:
            out = int(act_space.n)
        else:
            self.act_dim = int(np.prod(act_space.shape))
            out = self.act_dim * (2 if self.state_dependent_std else 1)
            if not self.state_dependent_std:
                self.log_std = nn.Parameter(torch.full((self.act_dim,), float(log_std_init)))
            low, high = act_space.low.astype(np.float32), act_space.high.astype(np.float32)
            self.register_buffer("low", torch.as_tensor(low))
            self.register_buffer("high", torch.as_tensor(high))
        self.body = mlp(self.encoder.out_dim, tuple(hidden), out, activation, ortho_init, out_gain=0.01)
        self.log_std_init = log_std_init

    def forward(self, obs):
        out = self.body(self.encoder(obs)).float()  # float32 even under bfloat16 autocast
        if self.discrete:
            return Categorical(out)
        if self.state_dependent_std:
            mean, log_std = out.split(self.act_dim, dim=-1)
            log_std = (log_std + self.log_std_init).clamp(-20.0, 2.0)
        else:
            mean, log_std = out, self.log_std
        if self.squash:
            return TanhGaussian(mean, log_std, self.low, self.high)
        return DiagGaussian(mean, log_std)


class Critic(nn.Module):
    """V(s): encoder followed by an MLP with a scalar head; returns shape (B,)."""

    def __init__(self, obs_space, hidden=(64, 64), activation="tanh", ortho_init=True):
        super().__init__()
        self.encoder = make_encoder(obs_space)
        self.body = mlp(self.encoder.out_dim, tuple(hidden), 1, activation, ortho_init, out_gain=1.0)

    def forward(self, obs):
        return self.body(self.encoder(obs)).squeeze(-1)
