"""Adam and RMSprop, bit-identical to ``torch.optim`` and cheap to create.

``torch.optim.Optimizer.__init__`` imports ``torch._dynamo`` on its first call, which costs
1-3 s of a short run's start-up. These two classes compute exactly what ``torch.optim.Adam``
(single-tensor or ``fused=True``) and ``torch.optim.RMSprop(foreach=True)`` compute, with the
same kernels and the same operation order, so a seeded run gives the same numbers with either.
Their ``state_dict()`` has torch's layout, so a checkpoint written with ``torch.optim`` loads
here and the other way round.

Adam (Kingma & Ba 2015) with gradient ``g_t``, for every parameter ``θ``::

    m_t = β1 m_{t-1} + (1 - β1) g_t          v_t = β2 v_{t-1} + (1 - β2) g_t²
    θ_t = θ_{t-1} - lr / (1 - β1^t) · m_t / (sqrt(v_t) / sqrt(1 - β2^t) + eps)

RMSprop: ``v_t = α v_{t-1} + (1 - α) g_t²``, ``θ_t = θ_{t-1} - lr · g_t / (sqrt(v_t) + eps)``.
``weight_decay`` adds ``weight_decay · θ`` to ``g_t`` (L2, as torch). Parameters whose
``.grad`` is ``None`` are skipped and their step count does not advance.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["Adam", "RMSprop"]


class _Optimizer:
    """One parameter group; the state of parameter ``i`` is ``self.state[i]``."""

    defaults: dict = {}
    _tensors: tuple[str, ...] = ()  # per-parameter state tensors, beside "step"

    def __init__(self, params: Iterable[torch.Tensor], **hyper):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if any(not isinstance(p, torch.Tensor) for p in self.params):
            raise TypeError(f"{type(self).__name__}: params must be tensors (not parameter-group dicts)")
        for k, v in hyper.items():
            if k in ("lr", "eps", "weight_decay", "alpha") and not 0.0 <= float(v):
                raise ValueError(f"{type(self).__name__}: {k} must be >= 0, got {v}")
        self.param_groups = [{"params": self.params, **self.defaults, **hyper}]
        self.state: dict[int, dict] = {}

    @property
    def group(self) -> dict:
        return self.param_groups[0]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_()
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        params, grads, states = self._with_grad()
        if params:
            self._update(self.group, params, grads, states)

    def _with_grad(self):
        """(params, grads, states) of the parameters that have a gradient, creating fresh state."""
        ps, gs, ss = [], [], []
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            s = self.state.get(i)
            if s is None:
                s = self.state[i] = self._fresh_state(p)
            ps.append(p), gs.append(p.grad), ss.append(s)
        return ps, gs, ss

    def _fresh_state(self, p: torch.Tensor) -> dict:
        state = {"step": torch.zeros((), dtype=torch.float32, device=self._step_device(p))}
        for name in self._tensors:
            state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _step_device(self, p: torch.Tensor):
        return "cpu"

    def state_dict(self) -> dict:
        group = {k: v for k, v in self.group.items() if k != "params"}
        group["params"] = list(range(len(self.params)))
        return {"state": {i: dict(s) for i, s in self.state.items()}, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        name = type(self).__name__
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if not isinstance(groups, list) or len(groups) != 1:
            raise ValueError(f"{name}: the state dict has {len(groups) if isinstance(groups, list) else 'no'} "
                             f"parameter groups; expected 1")
        saved_ids = list(groups[0].get("params", []))
        if len(saved_ids) != len(self.params):
            raise ValueError(f"{name}: the state dict is for {len(saved_ids)} parameters; this optimizer has "
                             f"{len(self.params)}")
        index = {pid: i for i, pid in enumerate(saved_ids)}
        state = {}
        for pid, s in state_dict.get("state", {}).items():
            if pid not in index:
                raise ValueError(f"{name}: the state dict has state for unknown parameter id {pid!r}")
            i = index[pid]
            p, missing = self.params[i], [k for k in ("step", *self._tensors) if k not in s]
            if missing:
                raise ValueError(f"{name}: the state of parameter {i} lacks {', '.join(missing)}")
            new = {}
            for k, v in s.items():
                v = torch.as_tensor(v)
                if k == "step":
                    new[k] = v.to(dtype=torch.float32, device=self._step_device(p)).reshape(()).clone()
                else:
                    if v.shape != p.shape:
                        raise ValueError(f"{name}: state {k!r} of parameter {i} has shape {tuple(v.shape)}; the "
                                         f"parameter has {tuple(p.shape)}")
                    new[k] = v.to(dtype=p.dtype, device=p.device).clone()
            state[i] = new
        hyper = {k: v for k, v in groups[0].items() if k != "params"}
        self.param_groups = [{**self.group, **hyper, "params": self.params}]
        self.state = state


class Adam(_Optimizer):
    """``torch.optim.Adam`` without ``amsgrad``/``maximize``; ``fused=True`` runs torch's fused kernel
    (CPU and CUDA), otherwise torch's single-tensor update."""

    defaults = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False, "maximize": False,
                "foreach": None, "capturable": False, "differentiable": False, "fused": None,
                "decoupled_weight_decay": False}
    _tensors = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 fused: bool | None = None):
        b1, b2 = (float(b) for b in betas)
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        super().__init__(params, lr=float(lr), betas=(b1, b2), eps=float(eps), weight_decay=float(weight_decay),
                         fused=bool(fused) if fused is not None else None)
        if self.group["fused"] and any(p.device.type not in ("cpu", "cuda") for p in self.params):
            raise ValueError("Adam: fused=True supports CPU and CUDA parameters only")

    def _step_device(self, p):
        return p.device if self.group["fused"] else "cpu"

    def _update(self, g: dict, params, grads, states) -> None:
        lr, (beta1, beta2), eps, wd = g["lr"], g["betas"], g["eps"], g["weight_decay"]
        if g["fused"]:
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                               [], steps, amsgrad=False, lr=lr, beta1=beta1, beta2=beta2, weight_decay=wd, eps=eps,
                               maximize=False, grad_scale=None, found_inf=None)
            return
        for p, grad, s in zip(params, grads, states):
            s["step"] += 1
            if wd != 0:
                grad = grad.add(p, alpha=wd)
            s["exp_avg"].lerp_(grad, 1 - beta1)
            s["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            t = s["step"].item()
            step_size = lr / (1 - beta1**t)
            denom = (s["exp_avg_sq"].sqrt() / (1 - beta2**t) ** 0.5).add_(eps)
            p.addcdiv_(s["exp_avg"], denom, value=-step_size)


class RMSprop(_Optimizer):
    """``torch.optim.RMSprop(foreach=True)`` without momentum or centering."""

    defaults = {"alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False,
                "capturable": False, "foreach": True, "maximize": False, "differentiable": False}
    _tensors = ("square_avg",)

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0):
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"RMSprop: alpha must be in [0, 1], got {alpha}")
        super().__init__(params, lr=float(lr), alpha=float(alpha), eps=float(eps), weight_decay=float(weight_decay))

    def _update(self, g: dict, params, grads, states) -> None:
        for dtype_params, dtype_grads, dtype_states in _by_device_and_dtype(params, grads, states):
            torch._foreach_add_([s["step"] for s in dtype_states], torch.tensor(1.0), alpha=1.0)
            if g["weight_decay"] != 0:
                dtype_grads = torch._foreach_add(dtype_grads, dtype_params, alpha=g["weight_decay"])
            sq = [s["square_avg"] for s in dtype_states]
            torch._foreach_mul_(sq, g["alpha"])
            torch._foreach_addcmul_(sq, dtype_grads, dtype_grads, value=1 - g["alpha"])
            avg = torch._foreach_sqrt(sq)
            torch._foreach_add_(avg, g["eps"])
            torch._foreach_addcdiv_(dtype_params, dtype_grads, avg, value=-g["lr"])


def _by_device_and_dtype(params, grads, states):
    """Group the lists by (device, dtype), as torch's foreach optimisers do."""
    groups: dict = {}
    for p, grad, s in zip(params, grads, states):
        bucket = groups.setdefault((p.device, p.dtype), ([], [], []))
        bucket[0].append(p), bucket[1].append(grad), bucket[2].append(s)
    return list(groups.values())
