"""Fitting a dynamics ensemble to transitions D = {(s, a, s', r)}: CS285 lecture 11's bootstrap
ensembles, with a validation split, early stopping and elite members.

:func:`fit_dynamics` does, once per call (the algorithms call it after each round of data):

1. split D into training and validation rows (``val_fraction``, a fresh random split);
2. fit the normaliser to the training rows;
3. give every member its own index stream over the training rows: a bootstrap resample
   (drawn with replacement, once per fit) or, without ``bootstrap``, the rows themselves; each
   epoch shuffles every member's stream independently, so members see different minibatches;
4. each epoch, one gradient step per minibatch on ``sum_e loss_e`` (Gaussian NLL or MSE, plus
   the log-variance bound penalty), then every member's validation score: the loss it is
   trained on, the Gaussian NLL for probabilistic members and the MSE for deterministic ones;
5. stop when no member's validation score improved by more than ``improvement`` for
   ``patience`` epochs, or after ``max_epochs``; every member gets back its best weights.
   For the MSE the improvement is relative (``mse < best (1 - improvement)``); for the NLL it is
   what the same relative improvement of the squared error is worth to a calibrated Gaussian,
   ``nll < best + d/2 log(1 - improvement)`` for d target dimensions;
6. the ``num_elites`` members with the lowest validation score are the elites.

Why the NLL for probabilistic members: the MSE is the mean over target dimensions, so one
dimension the inputs cannot predict (a learned reward that drops to 0 on the terminating step
of InvertedPendulum-v5 or Hopper-v5) sets it, plateaus within a few epochs and stops the fit
while the log-variances of the predictable dimensions are still far too wide. Measured on
InvertedPendulum-v5 with mbrl-lib's MBPO config: stopped on the MSE, the sampled next states
strayed from MuJoCo's by 20-40 times the mean prediction's error (BENCHMARKS.md section 9).

Everything here is a function of (model, optimiser, data, numbers, generator): no state.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deeprl.core.errors import ConfigError, NonFiniteError
from deeprl.models.ensemble import DynamicsEnsemble, ensemble_mse, gaussian_nll, logvar_bound_penalty
from deeprl.models.model_env import PRECISIONS

__all__ = ["FitResult", "bootstrap_indices", "fit_dynamics", "member_streams", "split_validation"]


def bootstrap_indices(n: int, members: int, rng: np.random.Generator) -> np.ndarray:
    """``(members, n)`` row indices drawn uniformly with replacement, one resample per member."""
    return rng.integers(0, n, size=(members, n))


def member_streams(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shuffle each member's row of indices independently: ``(E, n)`` -> ``(E, n)``."""
    return rng.permuted(base, axis=1)


def split_validation(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random split of ``range(n)`` into (training, validation) rows. At least one row is held
    out when ``fraction > 0`` and ``n >= 2``; none when ``fraction == 0``."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"model_val_fraction must be in [0, 1), got {fraction}")
    perm = rng.permutation(n)
    n_val = 0 if fraction == 0 or n < 2 else max(1, int(round(n * fraction)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@dataclass
class FitResult:
    """What one fit did: per-member losses (lists over members), the elites, the epochs run."""

    epochs: int
    train_loss: list[float]
    train_mse: list[float]
    val_mse: list[float]
    val_nll: list[float] | None
    elites: list[int]
    gradient_steps: int

    def metrics(self, prefix: str = "model") -> dict:
        """Metric row entries: means over members, and every member's value (``.../m{e}``)."""
        out = {f"{prefix}/epochs": self.epochs, f"{prefix}/train_loss": float(np.mean(self.train_loss)),
               f"{prefix}/train_mse": float(np.mean(self.train_mse))}
        per = {"train_loss": self.train_loss, "train_mse": self.train_mse}
        if self.val_mse:
            out[f"{prefix}/val_mse"] = float(np.mean([self.val_mse[e] for e in self.elites]))
            per["val_mse"] = self.val_mse
        if self.val_nll:
            out[f"{prefix}/val_nll"] = float(np.mean([self.val_nll[e] for e in self.elites]))
            per["val_nll"] = self.val_nll
        for name, values in per.items():
            for e, v in enumerate(values):
                out[f"{prefix}/{name}/m{e}"] = float(v)
        return out


def _member_params(model: DynamicsEnsemble) -> list[torch.nn.Parameter]:
    """Parameters with one slice per member (the EnsembleLinear weights and biases)."""
    return [p for p in model.parameters() if p.dim() == 3 and p.shape[0] == model.members]


def _losses(model: DynamicsEnsemble, x, y, precision: str = "float32"):
    if precision == "bfloat16":  # the hidden layers' matmuls; heads and losses stay float32
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            mean, logvar = model(x)
    else:
        mean, logvar = model(x)
    mse = ensemble_mse(mean, y)
    return (gaussian_nll(mean, logvar, y) if logvar is not None else mse), mse, logvar, mean


def fit_dynamics(model: DynamicsEnsemble, optimizer, states: torch.Tensor, actions: torch.Tensor,
                 next_states: torch.Tensor, rewards: torch.Tensor | None = None, *, rng: np.random.Generator,
                 batch_size: int = 256, max_epochs: int = 50, val_fraction: float = 0.2, patience: int = 5,
                 improvement: float = 0.01, bootstrap: bool = True, num_elites: int | None = None,
                 max_gradient_steps: int | None = None, keep_prefit: bool = False,
                 max_grad_norm: float | None = None, precision: str = "float32") -> FitResult:
    """Fit ``model`` to the transitions (rows of the tensors; ``rewards`` when the model learns
    them); see the module docstring. Raises NonFiniteError naming the epoch on a NaN loss.

    ``keep_prefit``: the weights the model came in with (scored on the new validation split,
    under the new normaliser) are each member's first candidate, so a refit never hands back a
    member worse than before it. ``max_grad_norm``: clip each step's gradient norm.
    ``precision="bfloat16"``: the training steps run the hidden layers' matmuls under bfloat16
    autocast (float32 weights, optimiser, heads and losses); validation stays float32."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if model.learn_reward and rewards is None:
        raise ConfigError("fit_dynamics: the model learns rewards; pass rewards")
    E, n = model.members, states.shape[0]
    if n < 1:
        raise ConfigError("fit_dynamics: no transitions to fit")
    num_elites = E if num_elites is None else int(num_elites)
    if not 1 <= num_elites <= E:
        raise ConfigError(f"num_elites must be in [1, ensemble_size={E}], got {num_elites}")
    targets = model.targets_of(states, next_states, rewards if model.learn_reward else None)
    train_idx, val_idx = split_validation(n, val_fraction, rng)
    t_idx = torch.as_tensor(train_idx)
    model.set_normalizer(torch.cat([states, actions], -1)[t_idx], targets[t_idx])
    with torch.no_grad():
        x_all, y_all = model.normalize_inputs(states, actions), model.normalize_targets(targets)
    x_tr, y_tr = x_all[t_idx], y_all[t_idx]
    x_val, y_val = (x_all[torch.as_tensor(val_idx)], y_all[torch.as_tensor(val_idx)]) if len(val_idx) else (None, None)
    n_tr = len(train_idx)
    base = bootstrap_indices(n_tr, E, rng) if bootstrap else np.broadcast_to(np.arange(n_tr), (E, n_tr))
    params = _member_params(model)
    best = np.full(E, np.inf)  # each member's best validation score (NLL or MSE), and its MSE and NLL then
    best_mse, best_nll = np.full(E, np.inf), np.full(E, np.nan)
    best_weights = [p.detach().clone() for p in params]
    nll_margin = -0.5 * model.out_dim * np.log1p(-improvement)  # the NLL worth of a relative MSE improvement

    def improved(score: np.ndarray) -> np.ndarray:  # a member not yet scored has best = inf
        threshold = best - nll_margin if model.probabilistic else best * (1.0 - improvement)  # (MSE >= 0)
        return np.isfinite(score) & (score < threshold)

    def validate() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.no_grad():
            nll_e, mse_e, _, _ = _losses(model, x_val, y_val)
        mse = mse_e.numpy()
        return (nll_e.numpy() if model.probabilistic else mse), mse, nll_e.numpy()

    if keep_prefit and x_val is not None:
        score, mse, nll = validate()
        keep = np.isfinite(score)
        best, best_mse, best_nll = (np.where(keep, x, fill) for x, fill in ((score, np.inf), (mse, np.inf),
                                                                           (nll, np.nan)))
    since, epochs, steps = 0, 0, 0
    train_loss = train_mse = np.zeros(E)
    while epochs < max_epochs and (max_gradient_steps is None or steps < max_gradient_steps):
        order = torch.as_tensor(member_streams(base, rng))
        loss_sum, mse_sum, batches = torch.zeros(E), torch.zeros(E), 0
        for k in range(0, n_tr, batch_size):
            ids = order[:, k:k + batch_size]  # (E, b): each member its own rows
            loss_e, mse_e, _, _ = _losses(model, x_tr[ids], y_tr[ids], precision)
            loss = loss_e.sum() + logvar_bound_penalty(model)
            if not torch.isfinite(loss):
                raise NonFiniteError(f"dynamics model: non-finite training loss at epoch {epochs + 1} "
                                     f"(members {np.flatnonzero(~np.isfinite(loss_e.detach().numpy())).tolist()})")
            optimizer.zero_grad()
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            loss_sum += loss_e.detach()
            mse_sum += mse_e.detach()
            batches += 1
            steps += 1
            if max_gradient_steps is not None and steps >= max_gradient_steps:
                break
        epochs += 1
        train_loss, train_mse = (loss_sum / batches).numpy(), (mse_sum / batches).numpy()
        if x_val is None:
            continue
        score, mse, nll = validate()
        better = improved(score)
        if better.any():
            since = 0
            for p, w in zip(params, best_weights):
                w[better] = p.detach()[better]
            best = np.where(better, score, best)
            best_mse, best_nll = np.where(better, mse, best_mse), np.where(better, nll, best_nll)
        else:
            since += 1
            if since >= patience:
                break
    if x_val is not None:
        with torch.no_grad():
            for p, w in zip(params, best_weights):
                p.copy_(w)
        ranking = np.argsort(best, kind="stable")
        val_mse, val_nll = best_mse.tolist(), (best_nll.tolist() if model.probabilistic else None)
    else:
        ranking = np.argsort(train_mse, kind="stable")
        val_mse, val_nll = [], None
    return FitResult(epochs=epochs, train_loss=[float(v) for v in train_loss], train_mse=[float(v) for v in train_mse],
                     val_mse=val_mse, val_nll=val_nll, elites=sorted(int(e) for e in ranking[:num_elites]),
                     gradient_steps=steps)
