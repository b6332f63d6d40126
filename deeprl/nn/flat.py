"""Parameters of several modules packed into one contiguous tensor.

With a few small layers, per-tensor overhead dominates an update: clipping the gradient
norm and an Adam step cost about as much as the backward pass. After packing, every
parameter and its gradient are views into two flat buffers, so the norm, the clip and the
optimiser step are single kernels on one tensor. Modules keep working as usual
(``state_dict``/``load_state_dict`` copy into the views).
"""
from __future__ import annotations

import torch
from torch import nn


class FlatParams:
    def __init__(self, *modules: nn.Module):
        params = [p for m in modules for p in m.parameters() if p.requires_grad]
        if len({p.device for p in params}) > 1 or len({p.dtype for p in params}) > 1:
            raise ValueError("FlatParams needs all parameters on one device with one dtype")
        total = sum(p.numel() for p in params)
        self.param = nn.Parameter(torch.empty(total, dtype=params[0].dtype, device=params[0].device))
        self.param.grad = torch.zeros_like(self.param)
        offset = 0
        with torch.no_grad():
            for p in params:
                n = p.numel()
                self.param[offset:offset + n].copy_(p.reshape(-1))
                p.data = self.param.data[offset:offset + n].view_as(p)
                p.grad = self.param.grad[offset:offset + n].view_as(p)
                offset += n
        self.params = params

    def zero_grad(self) -> None:
        """Zero the gradients in place (never set them to None: they are views)."""
        self.param.grad.zero_()

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Scale gradients so their global L2 norm is at most ``max_norm``; returns the norm."""
        norm = torch.linalg.vector_norm(self.param.grad)
        self.param.grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))
        return norm


def fast_adam_kwargs(device: torch.device) -> dict:
    """Fused Adam where torch supports it (CPU and CUDA), which removes per-parameter loops."""
    return {"fused": True} if torch.device(device).type in ("cpu", "cuda") else {}
