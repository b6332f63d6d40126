"""Dyna with function approximation: the general "Dyna-style" recipe of CS285 lecture 12.

1. act in the real env and store (s, a, s', r) (the replay loop's buffer, and D for the model);
2. learn the model p(s' | s, a) (every ``model_train_freq`` env steps, on D);
3. repeat: sample s from the visited states, choose an action (``rollout_action``: the one taken
   there, ``buffer``; the policy's, ``policy``; or uniform, ``random``), simulate one step
   s' ~ p(.|s, a), r = r(s, a, s'), and train on (s, a, s', r) with model-free RL (SAC) mixed with
   real data (``real_ratio``); ``rollout_length`` > 1 takes more model steps with the policy.

That is MBPO's machinery with one-step rollouts, so Dyna is the MBPO agent under another name
with these defaults (the tabular Dyna-Q of the course is ``dyna_q``).
"""
from __future__ import annotations

from dataclasses import dataclass

from deeprl.algos.model_based.mbpo import MBPO, ROLLOUT_ACTIONS, MBPOConfig
from deeprl.core.config import param

__all__ = ["Dyna", "DynaConfig"]


@dataclass
class DynaConfig(MBPOConfig):
    real_ratio: float = param(0.5, "fraction of each minibatch drawn from the real buffer", low=0.0, high=1.0)
    gradient_steps: int = param(2, "SAC gradient steps per env step", low=1)
    rollout_length: int = param(1, "model steps per imagined transition chain (1: the classic recipe)", low=0)
    rollout_action: str = param("buffer", "first imagined action: the one taken in the real data, the "
                                          "policy's, or uniform (later steps: the policy's)",
                                choices=ROLLOUT_ACTIONS)


class Dyna(MBPO):
    name = "dyna"
    Config = DynaConfig
