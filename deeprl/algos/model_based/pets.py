"""PETS: probabilistic ensembles with trajectory sampling (Chua et al. 2018); CS285 lecture 11,
"using model uncertainty".

The loop is model-based RL v1.5 (:mod:`deeprl.algos.model_based.mbrl`); what makes it PETS are
its pieces, set here as defaults:

- each member is a Gaussian N(mu_e(s, a), diag exp(v_e(s, a))) over the change of state, trained
  by the Gaussian NLL on its own bootstrap resample, with learned soft bounds on v (aleatoric
  uncertainty inside a member, epistemic uncertainty between members);
- a candidate action sequence is scored by ``particles`` = 20 sampled rollouts, each propagated
  by one member for the whole horizon (TS-infinity: ``propagation=tsinf``; ``ts1`` redraws the
  member every step): E[sum_t r] is estimated over both kinds of uncertainty;
- CEM (population 500, 50 elites, 5 iterations) picks the sequence, warm-started from the
  previous plan shifted by one step; MPC replans every step.

So PETS is the MBRL agent under another name with these defaults; every switch of
:class:`~deeprl.algos.model_based.mbrl.MBRLConfig` applies (``planner=mppi``, ``propagation=ts1``...).
"""
from __future__ import annotations

from dataclasses import dataclass

from deeprl.algos.model_based.mbrl import MBRL, MBRLConfig
from deeprl.core.config import param
from deeprl.models.model_env import PROPAGATIONS
from deeprl.planning.batched import BATCHED_METHODS

__all__ = ["PETS", "PETSConfig"]


@dataclass
class PETSConfig(MBRLConfig):
    ensemble_size: int = param(5, "members of the dynamics ensemble", low=1)
    model_hidden_sizes: tuple[int, ...] = param((200, 200, 200, 200), "hidden layers of every member", low=1)
    probabilistic: bool = param(True, "Gaussian members trained by NLL (else deterministic, MSE)")
    planner: str = param("cem", "trajectory optimiser on the learned model", choices=BATCHED_METHODS)
    horizon: int = param(15, "planning horizon H (steps)", low=1)
    num_samples: int = param(500, "action sequences evaluated per planner iteration", low=2)
    num_elites: int = param(50, "CEM: elites the Gaussian is refit to", low=1)
    num_iterations: int = param(5, "CEM/MPPI iterations per step (random shooting: 1)", low=1)
    propagation: str = param("tsinf", "which member predicts each particle (trajectory sampling)",
                             choices=PROPAGATIONS)
    particles: int | None = param(20, "model rollouts per action sequence (None: one per model elite)", low=1)


class PETS(MBRL):
    name = "pets"
    Config = PETSConfig
