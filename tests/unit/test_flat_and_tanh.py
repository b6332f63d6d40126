"""FlatParams and the sigmoid-based Tanh agree with the per-tensor / torch.tanh references."""
import copy

import torch
from torch import nn

from deeprl.nn.flat import FlatParams
from deeprl.nn.networks import Tanh, mlp


def test_tanh_matches_torch_tanh_values_and_gradients():
    x = torch.linspace(-20, 20, 4001, dtype=torch.float32, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y, y_ref = Tanh()(x), torch.tanh(x_ref)
    assert torch.allclose(y, y_ref, atol=2e-7)
    y.sum().backward()
    y_ref.sum().backward()
    assert torch.allclose(x.grad, x_ref.grad, atol=5e-7)


def test_flat_params_training_equals_per_tensor_training():
    torch.manual_seed(0)
    a, b = mlp(3, (8, 8), 2), mlp(3, (8,), 1)
    a_ref, b_ref = copy.deepcopy(a), copy.deepcopy(b)
    flat = FlatParams(a, b)
    opt = torch.optim.Adam([flat.param], lr=1e-2)
    params_ref = list(a_ref.parameters()) + list(b_ref.parameters())
    opt_ref = torch.optim.Adam(params_ref, lr=1e-2)
    for _ in range(20):
        x = torch.randn(16, 3)
        for (m1, m2, o, zero, clip) in (
            (a, b, opt, flat.zero_grad, lambda: flat.clip_grad_norm_(0.3)),
            (a_ref, b_ref, opt_ref, lambda: opt_ref.zero_grad(),
             lambda: nn.utils.clip_grad_norm_(params_ref, 0.3)),
        ):
            loss = m1(x).pow(2).mean() + (m2(x) - 1).pow(2).mean()
            zero()
            loss.backward()
            clip()
            o.step()
    for p, q in zip(list(a.parameters()) + list(b.parameters()), params_ref):
        assert torch.allclose(p, q, atol=1e-6)
    # state_dict round trip writes through the views into the flat buffer
    sd = {k: v + 1 for k, v in a.state_dict().items()}
    a.load_state_dict(sd)
    assert torch.equal(flat.param[: sum(p.numel() for p in a.parameters())],
                       torch.cat([v.reshape(-1) for v in sd.values()]))
