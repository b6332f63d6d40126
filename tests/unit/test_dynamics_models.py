"""Learned dynamics (deeprl.models): the batched ensemble against its members run one by one, the
Gaussian NLL against torch.distributions, normalisation round trips, bootstrap streams and
validation splits, fitting (early stopping, best weights, elites), and the learned ModelEnv's
trajectory sampling (member choice and shapes, grouped evaluation equal to per-row evaluation)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from deeprl.core.errors import ConfigError, NonFiniteError
from deeprl.models.ensemble import DynamicsEnsemble, ensemble_mse, gaussian_nll, logvar_bound_penalty
from deeprl.models.model_env import LearnedModelEnv
from deeprl.models.training import bootstrap_indices, fit_dynamics, member_streams, split_validation
from deeprl.planning.model_env import model_returns


def _model(probabilistic=True, members=4, learn_reward=False, seed=0, hidden=(16, 16)):
    torch.manual_seed(seed)
    return DynamicsEnsemble(3, 2, members=members, hidden=hidden, probabilistic=probabilistic,
                            learn_reward=learn_reward)


def _member_forward(model: DynamicsEnsemble, e: int, x: torch.Tensor):
    """Member ``e`` alone, with plain matmuls on its weight slices (the reference)."""
    h = x
    for layer in model.body:
        if hasattr(layer, "weight"):
            h = h @ layer.weight[e] + layer.bias[e, 0]
        else:
            h = layer(h)
    mean = h @ model.mean_head.weight[e] + model.mean_head.bias[e, 0]
    if model.logvar_head is None:
        return mean, None
    v = h @ model.logvar_head.weight[e] + model.logvar_head.bias[e, 0]
    hi, lo = model.max_logvar[0, 0], model.min_logvar[0, 0]
    v = hi - torch.nn.functional.softplus(hi - v)
    return mean, lo + torch.nn.functional.softplus(v - lo)


@pytest.mark.parametrize("probabilistic", [True, False])
def test_batched_forward_equals_members_one_by_one(probabilistic):
    model = _model(probabilistic)
    x = torch.randn(7, 5)
    mean, logvar = model(x)
    assert mean.shape == (4, 7, 3)
    for e in range(4):
        m, v = _member_forward(model, e, x)
        torch.testing.assert_close(mean[e], m, rtol=1e-5, atol=1e-6)
        if probabilistic:
            torch.testing.assert_close(logvar[e], v, rtol=1e-5, atol=1e-6)
    assert (logvar is None) == (not probabilistic)
    # per-member inputs (E, B, in), and a subset of the members by index
    xs = torch.randn(4, 6, 5)
    mean, _ = model(xs)
    for e in range(4):
        torch.testing.assert_close(mean[e], _member_forward(model, e, xs[e])[0], rtol=1e-5, atol=1e-6)
    idx = torch.tensor([3, 1])
    sub, _ = model(xs[idx], idx)
    torch.testing.assert_close(sub, mean[idx], rtol=1e-5, atol=1e-6)


def test_log_variance_is_softly_bounded():
    model = _model(True)
    with torch.no_grad():
        model.logvar_head.bias.fill_(1e3)
        _, hi = model(torch.randn(5, 5))
        model.logvar_head.bias.fill_(-1e3)
        _, lo = model(torch.randn(5, 5))
    # (soft: the lower bound adds softplus(max - min) - (max - min) = 3e-5 at the top)
    assert torch.all(hi <= model.max_logvar + 1e-4) and torch.all(lo >= model.min_logvar - 1e-4)
    torch.testing.assert_close(hi, model.max_logvar.expand_as(hi), atol=1e-3, rtol=0)
    torch.testing.assert_close(lo, model.min_logvar.expand_as(lo), atol=1e-3, rtol=0)
    assert float(logvar_bound_penalty(model).detach()) == pytest.approx(0.01 * 3 * (0.5 - (-10.0)))
    assert float(logvar_bound_penalty(_model(False))) == 0.0


def test_gaussian_nll_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mean, logvar, y = (torch.randn(3, 50, 4, generator=g) for _ in range(3))
    ref = -torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(y).sum(-1).mean(-1)
    torch.testing.assert_close(gaussian_nll(mean, logvar, y), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ensemble_mse(mean, y), (mean - y).pow(2).mean((1, 2)))


def test_normalisation_round_trips_and_standardises():
    model = _model()
    g = torch.Generator().manual_seed(2)
    s, a = torch.randn(200, 3, generator=g) * 5 + 2, torch.rand(200, 2, generator=g)
    a[:, 1] = 0.7  # a constant input: centred only, not divided by ~0
    y = torch.randn(200, 3, generator=g) * 0.01 - 3
    model.set_normalizer(torch.cat([s, a], -1), y)
    x = model.normalize_inputs(s, a)
    torch.testing.assert_close(x.mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(x[:, :4].std(0, unbiased=False), torch.ones(4), atol=1e-4, rtol=0)
    assert torch.all(x[:, 4].abs() < 1e-6) and model.in_std[4] == 1
    torch.testing.assert_close(model.denormalize_targets(model.normalize_targets(y)), y, rtol=1e-5, atol=1e-6)
    # the statistics are buffers: they travel with the state dict
    other = _model(seed=5)
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(other.normalize_inputs(s, a), x)


def test_predict_is_delta_plus_state_and_member_choice():
    model = _model(probabilistic=False, learn_reward=True)
    s, a = torch.randn(6, 3), torch.randn(6, 2)
    mean, _ = model(model.normalize_inputs(s, a))
    y = model.denormalize_targets(mean)  # (E, B, 4)
    members = torch.tensor([0, 1, 2, 3, 3, 0])
    nxt, r = model.predict(s, a, members)
    rows = torch.arange(6)
    torch.testing.assert_close(nxt, s + y[members, rows, :3])
    torch.testing.assert_close(r, y[members, rows, 3])
    nxt_mean, _ = model.predict(s, a, None)
    torch.testing.assert_close(nxt_mean, s + y.mean(0)[:, :3])


def test_predict_samples_the_members_gaussian():
    model = _model(probabilistic=True, members=2)
    s, a = torch.zeros(20000, 3), torch.zeros(20000, 2)
    members = torch.ones(20000, dtype=torch.long)
    g = torch.Generator().manual_seed(3)
    nxt, _ = model.predict(s, a, members, sample=True, generator=g)
    mean, logvar = model(model.normalize_inputs(s[:1], a[:1]))
    std = (0.5 * logvar[1, 0]).exp() * model.out_std
    torch.testing.assert_close(nxt.mean(0), mean[1, 0] * model.out_std + model.out_mean, atol=4 * float(std.max()) /
                               np.sqrt(20000), rtol=0)
    torch.testing.assert_close(nxt.std(0), std, rtol=0.03, atol=0)


def test_bootstrap_indices_and_member_streams():
    rng = np.random.default_rng(0)
    idx = bootstrap_indices(5000, 4, rng)
    assert idx.shape == (4, 5000) and idx.min() >= 0 and idx.max() < 5000
    unique = [len(np.unique(row)) / 5000 for row in idx]
    assert all(abs(u - (1 - np.exp(-1))) < 0.02 for u in unique)  # a resample with replacement: ~63% distinct
    assert not np.array_equal(idx[0], idx[1])
    np.testing.assert_array_equal(idx, bootstrap_indices(5000, 4, np.random.default_rng(0)))
    base = np.broadcast_to(np.arange(100), (3, 100))
    s = member_streams(base, rng)
    assert all(sorted(row) == list(range(100)) for row in s)  # each member: a permutation of the rows
    assert not np.array_equal(s[0], s[1])


@pytest.mark.parametrize("n,fraction,n_val", [(100, 0.2, 20), (10, 0.05, 1), (7, 0.0, 0), (1, 0.5, 0)])
def test_split_validation(n, fraction, n_val):
    train, val = split_validation(n, fraction, np.random.default_rng(1))
    assert len(val) == n_val and len(train) == n - n_val
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(n))
    with pytest.raises(ConfigError, match="model_val_fraction"):
        split_validation(n, 1.0, np.random.default_rng(1))


def _linear_data(n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    s, a = torch.randn(n, 3, generator=g), torch.rand(n, 2, generator=g) * 2 - 1
    A = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.95, 0.2], [0.1, 0.0, 0.8]])
    B = torch.tensor([[0.5, 0.0], [0.0, 0.3], [0.2, 0.2]])
    return s, a, s @ A.T + a @ B.T, (s.pow(2).sum(-1) + a.pow(2).sum(-1))


@pytest.mark.parametrize("probabilistic", [False, True])
def test_fit_learns_linear_dynamics_and_reports_per_member(probabilistic):
    s, a, s2, r = _linear_data()
    model = _model(probabilistic, members=3, learn_reward=True, hidden=(32, 32))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    fit = fit_dynamics(model, opt, s, a, s2, r, rng=np.random.default_rng(0), batch_size=128, max_epochs=40,
                       val_fraction=0.2, patience=5, num_elites=2)
    assert len(fit.train_loss) == len(fit.val_mse) == 3 and len(fit.elites) == 2
    score = fit.val_nll if probabilistic else fit.val_mse  # elites: the lowest validation loss of each kind
    assert fit.elites == sorted(np.argsort(score)[:2].tolist())
    assert max(fit.val_mse) < 0.02  # normalised units: 2% of the targets' variance
    nxt, rew = model.predict(s[:200], a[:200], None)
    assert float((nxt - s2[:200]).pow(2).mean()) < 0.02
    assert float((rew - r[:200]).abs().mean()) < 0.3
    m = fit.metrics()
    assert {"model/train_loss/m0", "model/val_mse/m2", "model/epochs", "model/val_mse"} <= set(m)
    assert ("model/val_nll/m1" in m) == probabilistic


def test_fit_stops_early_and_restores_each_members_best_weights():
    s, a, s2, _ = _linear_data(500)
    model = _model(False, members=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # nothing improves after the first epoch
    fit = fit_dynamics(model, opt, s, a, s2, rng=np.random.default_rng(0), max_epochs=100, patience=3)
    assert fit.epochs == 1 + 3
    # a learning rate so large that training diverges: the members come back with their best weights
    model = _model(False, members=2, seed=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    fit = fit_dynamics(model, opt, s, a, s2, rng=np.random.default_rng(4), max_epochs=60, patience=60,
                       val_fraction=0.3)
    train, val = split_validation(len(s), 0.3, np.random.default_rng(4))
    with torch.no_grad():
        mean, _ = model(model.normalize_inputs(s[val], a[val]))
        now = ensemble_mse(mean, model.normalize_targets(s2[val] - s[val]))
    np.testing.assert_allclose(now.numpy(), fit.val_mse, rtol=1e-4)


def test_probabilistic_fit_stops_on_the_nll_so_an_unpredictable_column_does_not_stop_it():
    """A learned-reward column of coin flips (the inputs cannot predict it) sets the validation
    MSE, which plateaus at once. Stopping on the MSE would end the fit after ~patience epochs with
    the state dimensions' variances still wide; on the NLL the fit goes on while they narrow."""
    s, a, s2, _ = _linear_data(2000)
    coin = torch.as_tensor(np.random.default_rng(3).integers(0, 2, len(s)), dtype=torch.float32)
    model = _model(True, members=2, learn_reward=True, hidden=(32, 32))
    fit = fit_dynamics(model, torch.optim.Adam(model.parameters(), lr=3e-3), s, a, s2, coin,
                       rng=np.random.default_rng(0), max_epochs=60, patience=5, val_fraction=0.2)
    assert fit.epochs > 30  # measured: 45 (17 when it stopped on the MSE)
    with torch.no_grad():
        _, logvar = model(model.normalize_inputs(s[:500], a[:500]))
    state_var = logvar[..., :3].exp().mean().item()  # normalised units: 1 = the targets' whole spread
    assert state_var < 0.002, state_var  # measured: 3e-4 (0.014 when it stopped on the MSE)
    assert logvar[..., 3].exp().mean().item() > 0.5  # the coin keeps its variance
    # the score is the validation NLL: the elites are its lowest members; val_mse is reported beside it
    assert fit.elites == sorted(np.argsort(fit.val_nll)[:2].tolist()) and len(fit.val_mse) == 2


def test_bfloat16_fitting_runs_the_heads_in_float32_and_fits_as_well():
    """``precision="bfloat16"``: the hidden layers' matmuls under autocast, the heads in float32 (a
    bfloat16 output would round the prediction to 2^-8 of its size); the fit reaches about the
    float32 fit's validation error on the same data and seed."""
    s, a, s2, r = _linear_data(1500)
    model = _model(True, members=2, learn_reward=True, hidden=(32, 32))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mean, logvar = model(model.normalize_inputs(s[:8], a[:8]))
        hidden = model.body[0](model.normalize_inputs(s[:8], a[:8]))
    assert mean.dtype == logvar.dtype == torch.float32 and hidden.dtype == torch.bfloat16
    errors = {}
    for precision in ("float32", "bfloat16"):
        model = _model(True, members=2, learn_reward=True, hidden=(32, 32))
        fit = fit_dynamics(model, torch.optim.Adam(model.parameters(), lr=3e-3), s, a, s2, r,
                           rng=np.random.default_rng(0), max_epochs=30, patience=30, precision=precision)
        errors[precision] = max(fit.val_mse)
    assert errors["bfloat16"] < max(2 * errors["float32"], 0.01), errors
    with pytest.raises(ConfigError, match="precision: 'float16' is not one of float32, bfloat16"):
        fit_dynamics(model, torch.optim.Adam(model.parameters()), s, a, s2, r, rng=np.random.default_rng(0),
                     precision="float16")


def test_fit_raises_on_a_non_finite_loss_and_checks_arguments():
    s, a, s2, _ = _linear_data(100)
    model = _model(False, members=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    with pytest.raises(NonFiniteError, match="epoch 1"):
        fit_dynamics(model, opt, s, a, torch.full_like(s2, float("nan")), rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="num_elites"):
        fit_dynamics(model, opt, s, a, s2, rng=np.random.default_rng(0), num_elites=3)
    with pytest.raises(ConfigError, match="learns rewards"):
        fit_dynamics(_model(learn_reward=True), opt, s, a, s2, rng=np.random.default_rng(0))


def _reward(s, a, s2):
    return -(s2.pow(2).sum(-1))


@pytest.mark.parametrize("propagation", ["tsinf", "ts1"])
def test_learned_model_env_member_choice(propagation):
    model = _model(False, members=4)
    env = LearnedModelEnv(model, _reward, propagation=propagation, elites=[0, 2, 3],
                          generator=torch.Generator().manual_seed(0))
    picks = [env.members_for(10) for _ in range(3)]
    for p in picks:
        assert p.shape == (10,) and set(p.tolist()) <= {0, 2, 3}
        counts = np.bincount(p.numpy(), minlength=4)
        assert counts[1] == 0 and counts.max() - counts[counts > 0].min() <= 1  # dealt evenly
    if propagation == "tsinf":  # fixed per row: elites[row % 3]
        assert all(torch.equal(p, torch.tensor([0, 2, 3] * 3 + [0])) for p in picks)
    else:  # redrawn at every step
        assert not all(torch.equal(picks[0], p) for p in picks[1:])


@pytest.mark.parametrize("propagation", ["tsinf", "ts1", "mean"])
def test_learned_model_env_step_equals_per_row_prediction(propagation):
    model = _model(False, members=3, learn_reward=True)
    s, a = torch.randn(11, 3), torch.randn(11, 2)
    env = LearnedModelEnv(model, None, propagation=propagation, generator=torch.Generator().manual_seed(5))
    twin = LearnedModelEnv(model, None, propagation=propagation, generator=torch.Generator().manual_seed(5))
    members = twin.members_for(11)  # the same draw step() makes
    nxt, r, term = env.step(s, a)
    want, want_r = model.predict(s, a, members)
    torch.testing.assert_close(nxt, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(r, want_r, rtol=1e-5, atol=1e-6)
    assert term is None and nxt.shape == (11, 3) and r.shape == (11,)


def test_learned_model_env_known_reward_termination_and_dtype():
    model = _model(False, members=2)
    env = LearnedModelEnv(model, _reward, lambda s, a, s2: s2[:, 0] > 0, propagation="tsinf")
    s, a = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    nxt, r, term = env.step(s, a)
    assert nxt.dtype == r.dtype == torch.float64 and term.dtype == torch.bool
    torch.testing.assert_close(r, _reward(s, a, nxt), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(term, nxt[:, 0] > 0)
    # the planners' rollouts: (B, N, H, m) plans -> (B, N) returns, particles on the members
    plans = torch.randn(2, 5, 4, 2, dtype=torch.float64)
    g = model_returns(env, s[:2], plans, gamma=0.9, particles=2)
    assert g.shape == (2, 5) and torch.isfinite(g).all()


def test_learned_model_env_names_the_member_of_a_non_finite_prediction():
    model = _model(False, members=3)
    with torch.no_grad():
        model.mean_head.bias[1].fill_(float("nan"))
    env = LearnedModelEnv(model, _reward, propagation="tsinf")
    with pytest.raises(NonFiniteError, match=r"next state predicted by member\(s\) \[1\].*imagined step 1"):
        env.step(torch.zeros(6, 3), torch.zeros(6, 2))
    with pytest.raises(ConfigError, match="propagation"):
        LearnedModelEnv(model, _reward, propagation="ts2")
    with pytest.raises(ConfigError, match="reward function"):
        LearnedModelEnv(model, None)


def test_keep_prefit_never_hands_back_a_worse_member_and_clipping_bounds_the_steps():
    s, a, s2, _ = _linear_data(600)
    model = _model(False, members=2)
    fit_dynamics(model, torch.optim.Adam(model.parameters(), lr=3e-3), s, a, s2, rng=np.random.default_rng(0),
                 max_epochs=30)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    class Sabotage:  # an "optimiser" that throws the weights about: every epoch is worse than the start
        def __init__(self, params):
            self.params = list(params)

        def zero_grad(self):
            pass

        def step(self):
            with torch.no_grad():
                for p in self.params:
                    p.add_(torch.randn_like(p))

    fit = fit_dynamics(model, Sabotage(model.parameters()), s, a, s2, rng=np.random.default_rng(1), max_epochs=5,
                       patience=2, keep_prefit=True)
    _, val = split_validation(len(s), 0.2, np.random.default_rng(1))
    with torch.no_grad():
        mean, _ = model(model.normalize_inputs(s[val], a[val]))
        now = ensemble_mse(mean, model.normalize_targets(s2[val] - s[val]))
    np.testing.assert_allclose(now.numpy(), fit.val_mse, rtol=1e-4)
    assert fit.epochs == 2  # patience ran out: nothing beat the weights the model came in with
    for k, v in model.state_dict().items():
        if k.startswith(("body", "mean_head")):
            torch.testing.assert_close(v, before[k])
    # clipping: a step of lr 1 with the gradient's norm clipped to 1e-6 moves no weight by more than 1e-6
    fit_dynamics(model, torch.optim.SGD(model.parameters(), lr=1.0), s, a, s2, rng=np.random.default_rng(2),
                 max_epochs=1, max_gradient_steps=1, val_fraction=0.0, max_grad_norm=1e-6)
    moved = max(float((v - before[k]).abs().max()) for k, v in model.state_dict().items()
                if k.startswith(("body", "mean_head")))
    assert moved <= 1e-6 + 1e-9


@pytest.mark.parametrize("propagation", ["tsinf", "ts1", "mean"])
def test_bfloat16_planning_precision_stays_close_to_float32(propagation):
    """``precision="bfloat16"`` runs only the matmuls in bfloat16: same member draws and noise,
    float32 outputs, next states within bfloat16's rounding of the predicted change."""
    model = _model(True, members=4, hidden=(64, 64))
    s, a = torch.randn(64, 3), torch.randn(64, 2)
    model.set_normalizer(torch.cat([s, a], -1), torch.randn(64, 3) * 0.1)
    envs = [LearnedModelEnv(model, _reward, propagation=propagation, generator=torch.Generator().manual_seed(3),
                            precision=p) for p in ("float32", "bfloat16")]
    (n32, r32, _), (n16, r16, _) = (e.step(s, a) for e in envs)
    assert n16.dtype == r16.dtype == torch.float32
    delta = (n32 - s).abs().max()
    err = (n16 - n32).abs().max()
    assert 0 < err < 0.05 * delta, (float(err), float(delta))  # rounded (so bf16 ran), within 5% of the change
    torch.testing.assert_close(r16, _reward(s, a, n16))
    with pytest.raises(ConfigError, match="precision: 'float16' is not one of float32, bfloat16"):
        LearnedModelEnv(model, _reward, precision="float16")
