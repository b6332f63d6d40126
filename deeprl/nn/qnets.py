"""Q-networks for discrete actions: plain, dueling (Wang et al. 2016), noisy (Fortunato et al.
2018, factorised Gaussian) and distributional (C51, Bellemare et al. 2017) heads, in any
combination (Rainbow, Hessel et al. 2018)."""
from __future__ import annotations

import math

import torch
from torch import nn

from deeprl.nn.networks import ACTIVATIONS, make_encoder


class NoisyLinear(nn.Module):
    """y = (mu_w + sigma_w * eps_w) x + mu_b + sigma_b * eps_b with factorised noise
    eps_w = f(eps_out) f(eps_in)^T, eps_b = f(eps_out), f(x) = sign(x) sqrt(|x|).

    ``reset_noise()`` draws new noise; with ``noise=False`` the layer is the mean (deterministic)
    network."""

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 * bound))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 * bound))
        self.register_buffer("eps_in", torch.zeros(in_features), persistent=False)
        self.register_buffer("eps_out", torch.zeros(out_features), persistent=False)
        self.noise = True

    @staticmethod
    def _f(x):
        return x.sign() * x.abs().sqrt()

    def reset_noise(self) -> None:
        self.eps_in.copy_(self._f(torch.randn(self.in_features)))
        self.eps_out.copy_(self._f(torch.randn(self.out_features)))

    def forward(self, x):
        if not self.noise:
            return torch.addmm(self.bias_mu, x, self.weight_mu.t())
        w = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        b = self.bias_mu + self.bias_sigma * self.eps_out
        return torch.addmm(b, x, w.t())


def _stack(in_dim, sizes, out_dim, activation, linear):
    layers, d = [], in_dim
    for h in sizes:
        layers += [linear(d, h), ACTIVATIONS[activation]()]
        d = h
    layers.append(linear(d, out_dim))
    return nn.Sequential(*layers)


class QNetwork(nn.Module):
    """Q(s, .) for ``n_actions`` discrete actions: returns (B, A) values, or (B, A, n_atoms)
    logits of the return distribution over ``support`` when ``n_atoms > 1``.

    Dueling: the last hidden layer splits into a value and an advantage stream,
    Q = V + A - mean_a A (per atom for C51)."""

    def __init__(self, obs_space, n_actions: int, hidden=(64, 64), activation="relu", dueling=False,
                 noisy=False, sigma0=0.5, n_atoms=1):
        super().__init__()
        self.encoder = make_encoder(obs_space)
        self.n_actions, self.n_atoms, self.dueling = n_actions, n_atoms, dueling
        linear = (lambda i, o: NoisyLinear(i, o, sigma0)) if noisy else nn.Linear
        hidden = tuple(hidden)
        torso, last = (hidden[:-1], hidden[-1:]) if dueling and hidden else (hidden, ())
        layers, d = [], self.encoder.out_dim
        for h in torso:
            layers += [linear(d, h), ACTIVATIONS[activation]()]
            d = h
        self.torso = nn.Sequential(*layers)
        self.advantage = _stack(d, last, n_actions * n_atoms, activation, linear)
        self.value = _stack(d, last, n_atoms, activation, linear) if dueling else None
        self.noisy_layers = [m for m in self.modules() if isinstance(m, NoisyLinear)]

    def reset_noise(self) -> None:
        for m in self.noisy_layers:
            m.reset_noise()

    def set_noise(self, on: bool) -> None:
        for m in self.noisy_layers:
            m.noise = on

    def forward(self, obs):
        h = self.torso(self.encoder(obs))
        a = self.advantage(h).float()  # float32 even under bfloat16 autocast
        if self.n_atoms > 1:
            a = a.view(-1, self.n_actions, self.n_atoms)
        if self.value is None:
            return a
        v = self.value(h).float()
        v = v.view(-1, 1, self.n_atoms) if self.n_atoms > 1 else v
        return v + a - a.mean(1, keepdim=True)
