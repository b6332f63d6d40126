"""Network builders: MLPs, the Nature CNN, and observation encoders for Box/Dict spaces."""
from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from deeprl.core.errors import SpaceError


class _SigmoidTanh(torch.autograd.Function):
    """y = 2 * sigmoid(2x) - 1 = tanh(x); dy/dx = 1 - y^2 (one autograd node, in-place kernels)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x * 2).mul_(2).sub_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return torch.addcmul(grad, grad * y, y, value=-1)


class Tanh(nn.Module):
    """tanh, computed as 2 * sigmoid(2x) - 1 on large tensors.

    On this CPU torch.tanh of a 256x64 float32 tensor takes ~33 us against ~12 us for the
    sigmoid form (sigmoid is vectorised, tanh is not); forward plus backward of a 64x64 layer
    with it is ~10% faster. Below 2048 elements (acting on a few envs) the single torch.tanh
    op is cheaper and is used. Agreement with torch.tanh: ~1e-7 (values and gradients).
    """

    def forward(self, x):
        if x.numel() < 2048:
            return torch.tanh(x)
        return _SigmoidTanh.apply(x)


ACTIVATIONS = {"tanh": Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int | None, activation: str = "tanh",
        ortho_init: bool = True, out_gain: float = 1.0) -> nn.Sequential:
    """Linear -> act -> ... -> Linear(out_dim); ``out_dim=None`` ends on the last hidden layer.

    With ``ortho_init`` hidden layers get orthogonal weights with gain sqrt(2) and the
    output layer ``out_gain`` (0.01 for policy logits, 1 for values), biases zero.
    """
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        lin = nn.Linear(d, h)
        if ortho_init:
            nn.init.orthogonal_(lin.weight, math.sqrt(2))
            nn.init.zeros_(lin.bias)
        layers += [lin, ACTIVATIONS[activation]()]
        d = h
    if out_dim is not None:
        lin = nn.Linear(d, out_dim)
        if ortho_init:
            nn.init.orthogonal_(lin.weight, out_gain)
            nn.init.zeros_(lin.bias)
        layers.append(lin)
    return nn.Sequential(*layers)


def is_image_space(space: spaces.Space) -> bool:
    return isinstance(space, spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8


class NatureCNN(nn.Module):
    """Mnih et al. 2015 encoder: 3 conv layers + 512-unit linear; uint8 pixels scaled to [0,1].

    Input (B, C, H, W) or channel-last (B, H, W, C), detected from the space.
    """

    def __init__(self, space: spaces.Box, features: int = 512):
        super().__init__()
        shape = space.shape
        self.channel_last = shape[-1] < shape[0] and shape[-1] <= 4
        c = shape[-1] if self.channel_last else shape[0]
        self.conv = nn.Sequential(
            nn.Conv2d(c, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            n = self.conv(torch.zeros(1, c, *self._hw(shape))).shape[1]
        self.fc = nn.Sequential(nn.Linear(n, features), nn.ReLU())
        self.out_dim = features

    def _hw(self, shape):
        return shape[:2] if self.channel_last else shape[1:]

    def forward(self, x):
        x = x.float() / 255.0
        if self.channel_last:
            x = x.permute(0, 3, 1, 2)
        return self.fc(self.conv(x))


class FlattenEncoder(nn.Module):
    def __init__(self, space: spaces.Space):
        super().__init__()
        self.out_dim = int(spaces.flatdim(space))

    def forward(self, x):
        if x.dim() == 2 and x.dtype == torch.float32:  # already a batch of float vectors
            return x
        return x.float().reshape(x.shape[0], -1)


class DictEncoder(nn.Module):
    """Encode each key of a Dict observation (CNN for images, flatten otherwise), concatenate."""

    def __init__(self, space: spaces.Dict):
        super().__init__()
        self.keys = sorted(space.spaces)
        self.encoders = nn.ModuleDict({k: make_encoder(space[k]) for k in self.keys})
        self.out_dim = sum(e.out_dim for e in self.encoders.values())

    def forward(self, x: dict):
        return torch.cat([self.encoders[k](x[k]) for k in self.keys], dim=-1)


def make_encoder(space: spaces.Space) -> nn.Module:
    """Observation encoder with an ``out_dim`` attribute."""
    if isinstance(space, spaces.Dict):
        return DictEncoder(space)
    if is_image_space(space):
        return NatureCNN(space)
    if isinstance(space, (spaces.Box, spaces.MultiBinary)):
        return FlattenEncoder(space)
    raise SpaceError(f"unsupported observation space {space}; supported: Box (vector or uint8 image), "
                     "MultiBinary, Dict of those (Discrete observations: use a one-hot wrapper)")
