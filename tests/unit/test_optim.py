"""deeprl.nn.optim against torch.optim (the reference): bit-identical updates, interchangeable state dicts,
and no torch._dynamo import."""
import subprocess
import sys

import pytest
import torch

from deeprl.nn.optim import Adam, RMSprop


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(5, 3, generator=g)), torch.nn.Parameter(torch.randn(3, generator=g)),
            torch.nn.Parameter(torch.randn(7, generator=g, dtype=torch.float64))]


def _run(opt_cls, params, steps, seed=1, skip_last_every=0, **kw):
    opt = opt_cls(params, **kw)
    g = torch.Generator().manual_seed(seed)
    for t in range(steps):
        opt.zero_grad(set_to_none=True)
        for i, p in enumerate(params):
            if skip_last_every and i == len(params) - 1 and t % skip_last_every == 0:
                continue  # this parameter gets no gradient this step
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        opt.step()
    return opt


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("kw", [
    {"lr": 1e-2},
    {"lr": 3e-3, "betas": (0.5, 0.9), "eps": 1e-5},
    {"lr": 1e-2, "weight_decay": 0.1},
    {"lr": 1e-2, "fused": True},
    {"lr": 3e-3, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.01, "fused": True},
])
def test_adam_is_bit_identical_to_torch(kw):
    mine, ref = _params(), _params()
    _run(Adam, mine, 25, skip_last_every=3, **kw)
    _run(torch.optim.Adam, ref, 25, skip_last_every=3, **kw)
    assert _same(mine, ref)
    assert not _same(mine, _params())  # the parameters did move


@pytest.mark.parametrize("kw", [{"lr": 1e-2}, {"lr": 7e-4, "alpha": 0.9, "eps": 1e-5, "weight_decay": 0.05}])
def test_rmsprop_is_bit_identical_to_torch_foreach(kw):
    mine, ref = _params(), _params()
    _run(RMSprop, mine, 25, skip_last_every=4, **kw)
    _run(torch.optim.RMSprop, ref, 25, skip_last_every=4, foreach=True, **kw)
    assert _same(mine, ref)


def test_adam_closed_form_first_step():
    """After one step from zero state, Adam moves each coordinate by lr * g / (|g| + eps') (bias-corrected)."""
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    opt = Adam([p], lr=0.1, eps=1e-8)
    p.grad = torch.tensor([0.3, -4.0, 1e-3], dtype=torch.float64)
    opt.step()
    g = torch.tensor([0.3, -4.0, 1e-3], dtype=torch.float64)
    expected = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) - 0.1 * g / (g.abs() + 1e-8)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [None, True])
def test_state_dicts_interchange_with_torch_both_ways(fused):
    # torch -> mine: a checkpoint written with torch.optim resumes identically here
    a, b = _params(), _params()
    ref = _run(torch.optim.Adam, a, 10, lr=1e-2, fused=fused)
    mine = Adam(b, lr=5.0, fused=fused)  # lr is restored from the state dict, as torch does
    with torch.no_grad():
        for x, y in zip(b, a):
            x.copy_(y)
    mine.load_state_dict(ref.state_dict())
    assert mine.param_groups[0]["lr"] == 1e-2
    for opt, ps in ((ref, a), (mine, b)):
        g = torch.Generator().manual_seed(7)
        for _ in range(5):
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
            opt.step()
    assert _same(a, b)
    # mine -> torch
    back = torch.optim.Adam(_params(), lr=1.0, fused=fused)
    back.load_state_dict(mine.state_dict())
    for i in range(3):
        for k in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(back.state_dict()["state"][i][k], mine.state_dict()["state"][i][k])


def test_load_state_dict_mismatch_errors_name_the_problem():
    opt = Adam(_params(), lr=1e-3)
    other = _run(Adam, _params()[:2], 2, lr=1e-3)
    with pytest.raises(ValueError, match="for 2 parameters; this optimizer has 3"):
        opt.load_state_dict(other.state_dict())
    sd = _run(Adam, _params(), 2, lr=1e-3).state_dict()
    sd["state"][0] = {**sd["state"][0], "exp_avg": torch.zeros(2)}
    with pytest.raises(ValueError, match="has shape"):
        opt.load_state_dict(sd)
    with pytest.raises(ValueError, match="lacks exp_avg_sq"):
        opt.load_state_dict({"state": {0: {"step": 1.0, "exp_avg": torch.zeros(5, 3)}},
                             "param_groups": [{"params": [0, 1, 2]}]})
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})


def test_bad_hyperparameters_and_zero_grad():
    with pytest.raises(ValueError, match="betas"):
        Adam(_params(), betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="lr must be >= 0"):
        RMSprop(_params(), lr=-1)
    with pytest.raises(ValueError, match="empty"):
        Adam([])
    ps = _params()
    opt = _run(Adam, ps, 1)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in ps)
    opt.zero_grad()
    assert all(p.grad is None for p in ps)


def test_creating_and_stepping_does_not_import_dynamo():
    code = ("import sys, torch\nfrom deeprl.nn.optim import Adam, RMSprop\n"
            "p = torch.nn.Parameter(torch.zeros(3))\n"
            "for o in (Adam([p], fused=True), Adam([p]), RMSprop([p])):\n"
            "    p.grad = torch.ones(3); o.step()\n"
            "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
