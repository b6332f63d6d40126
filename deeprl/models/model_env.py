"""A learned dynamics ensemble behind the ``ModelEnv`` protocol (deeprl.planning.model_env):

    step(states (B, n), actions (B, m)) -> (next_states (B, n), rewards (B,), terminated (B,) or None)

States are observations. Which member answers each row is the propagation method (Chua et al.
2018, trajectory sampling):

- ``ts1``: a fresh member for every row at every step: each step deals the rows, in a random
  order, evenly over the elites (as mbrl-lib's ``random_model``; PETS' TS-1);
- ``tsinf``: a fixed member per row for the whole rollout, ``elites[row % len(elites)]``. The
  planners lay their rollouts out as rows ``(state, candidate, particle)`` with the particle
  fastest and keep that order over the horizon, so each candidate's particles are spread evenly
  over the elites and keep their member (PETS' TS-infinity, with an even rather than random
  assignment);
- ``mean``: the mean of the elites' predicted means, no noise (a deterministic model).

Either way each member runs only on its own rows: the rows are grouped into one block per elite
and the ensemble makes one batched call, so E members cost about one member on all rows.
``ts1`` and ``tsinf`` sample the probabilistic members' Gaussian noise (``generator``).
Rewards and terminations come from the env's known functions (deeprl.envs.rewards), or from
the model's reward head when it learns rewards (then ``terminated`` is None unless a function is
given). A non-finite prediction raises NonFiniteError naming the imagined step, the member and
the quantity.

``precision``: ``float32``, or ``bfloat16`` to run the members' hidden-layer matmuls under CPU
autocast (PETS planning 2.0x faster per action on the 2-core VM: 1.25 to 0.62 s, BENCHMARKS.md
section 9, measured when the heads ran in bfloat16 too); the output heads, the normalisation, the
sampled noise, the state integration ``s + delta`` and the rewards stay float32, so only the hidden
features carry bfloat16's 8-bit mantissa (2^-8 per rounding).
"""
from __future__ import annotations

import torch

from deeprl.core.errors import ConfigError, NonFiniteError
from deeprl.models.ensemble import DynamicsEnsemble

__all__ = ["PRECISIONS", "PROPAGATIONS", "LearnedModelEnv"]

PROPAGATIONS = ("ts1", "tsinf", "mean")
PRECISIONS = ("float32", "bfloat16")


class LearnedModelEnv:
    def __init__(self, model: DynamicsEnsemble, reward_fn=None, terminated_fn=None, propagation: str = "tsinf",
                 elites=None, generator: torch.Generator | None = None, precision: str = "float32"):
        if propagation not in PROPAGATIONS:
            raise ConfigError(f"propagation: {propagation!r} is not one of {', '.join(PROPAGATIONS)}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
        if reward_fn is None and not model.learn_reward:
            raise ConfigError("LearnedModelEnv: the model does not learn rewards; pass the env's reward function")
        self.model, self.reward_fn, self.terminated_fn = model, reward_fn, terminated_fn
        self.propagation, self.generator, self.precision = propagation, generator, precision
        self.state_dim, self.action_dim = model.obs_dim, model.act_dim
        self.set_elites(range(model.members) if elites is None else elites)
        self.steps = 0  # imagined steps taken (counts across rollouts; names the step in errors)

    def set_elites(self, elites) -> None:
        self.elites = torch.as_tensor(sorted(int(e) for e in elites), dtype=torch.long)
        if len(self.elites) == 0:
            raise ConfigError("LearnedModelEnv: at least one elite member is needed")

    def _deal(self, batch: int):
        """This step's assignment of rows to elites: ``order`` (consecutive blocks of ``per`` rows go
        to the elites in turn; entries ``>= batch`` pad the last blocks and are not used), ``keep``
        (``order < batch``) and ``members (batch,)``, the member answering each row."""
        n = len(self.elites)
        per = -(-batch // n)
        seq = torch.arange(per * n)  # tsinf: block k holds rows k, k + n, k + 2n, ...: row r -> elite r % n
        if self.propagation == "ts1":  # the same deal over a fresh random order of the rows
            seq[:batch] = torch.randperm(batch, generator=self.generator)
        order = seq.view(per, n).t().reshape(-1)
        keep = order < batch
        members = torch.empty(batch, dtype=torch.long)
        members[order[keep]] = self.elites.repeat_interleave(per)[keep]
        return order, keep, per, members

    def members_for(self, batch: int) -> torch.Tensor | None:
        """The member answering each of ``batch`` rows (None: the mean model). For ``ts1`` this
        draws an assignment, as :meth:`step` does with its own draw."""
        return None if self.propagation == "mean" else self._deal(batch)[3]

    def _forward(self, x, members):
        """The selected members' (mean, logvar), float32 whatever ``precision`` the matmuls ran in."""
        if self.precision == "float32":
            return self.model(x, members)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mean, logvar = self.model(x, members)
        return mean.float(), (None if logvar is None else logvar.float())

    @torch.no_grad()
    def step(self, states, actions):
        dtype, model = states.dtype, self.model
        s, a = states.to(model.in_mean.dtype), actions.to(model.in_mean.dtype)
        B, n = s.shape[0], len(self.elites)
        x = model.normalize_inputs(s, a)
        members = None
        if self.propagation == "mean":
            mean, _ = self._forward(x, self.elites)
            y = mean.mean(0)
        else:
            order, keep, per, members = self._deal(B)
            mean, logvar = self._forward(x[order % B].view(n, per, -1), self.elites)  # (n, per, out)
            if logvar is not None:
                mean = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=self.generator,
                                                                  dtype=mean.dtype)
            y = torch.empty(B, mean.shape[-1], dtype=mean.dtype)
            y[order[keep]] = mean.reshape(n * per, -1)[keep]
        y = model.denormalize_targets(y)
        next_s = s + y[:, :model.obs_dim]
        r = y[:, model.obs_dim] if model.learn_reward else None
        self.steps += 1
        self._check(next_s, "next state", members)
        if r is None:
            r = self.reward_fn(s, a, next_s)
        self._check(r, "reward", members)
        term = self.terminated_fn(s, a, next_s) if self.terminated_fn is not None else None
        return next_s.to(dtype), r.to(dtype), term

    def _check(self, x, quantity, members):
        if torch.isfinite(x).all():
            return
        bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(-1)
        who = "the mean model" if members is None else f"member(s) {sorted(set(members[bad].tolist()))}"
        raise NonFiniteError(f"non-finite {quantity} predicted by {who} of the dynamics ensemble at imagined step "
                             f"{self.steps} ({int(bad.sum())} of {x.shape[0]} rows)")
