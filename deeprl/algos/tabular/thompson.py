"""Thompson sampling (probability matching) for multi-armed bandits; CS285 "Exploration".

Keep a posterior over each arm's mean, sample one mean per arm from it, play the argmax:

- ``posterior=beta`` (Bernoulli rewards): Beta(alpha_a, beta_a), updated alpha += r, beta += 1 - r;
- ``posterior=gaussian`` (Gaussian rewards with known variance ``noise_var``): N(m_a, v_a),
  updated 1/v <- 1/v + 1/noise_var, m <- v' (m / v + r / noise_var);
- ``auto``: beta on deeprl/BernoulliBandit-v0, gaussian otherwise.

Its regret grows logarithmically, like UCB1's. Training is one bandit run of ``total_steps``
plays; the metrics and summary report the cumulative expected regret. Evaluation plays the
arm with the best sample mean.
"""
from __future__ import annotations

from dataclasses import dataclass

from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.tabular._common import (
    LOG_EVERY,
    BanditPolicy,
    Regret,
    bandit_act,
    bandit_env,
    bandit_state,
    bandit_update,
    load_bandit_state,
)
from deeprl.core.config import param
from deeprl.tabular.bandits import BernoulliBandit, ThompsonBernoulli, ThompsonGaussian


@dataclass
class ThompsonConfig:
    posterior: str = param("auto", "posterior family", choices=("auto", "beta", "gaussian"))
    prior_alpha: float = param(1.0, "beta posterior: prior alpha (successes + 1)", low=0.0, low_open=True)
    prior_beta: float = param(1.0, "beta posterior: prior beta (failures + 1)", low=0.0, low_open=True)
    prior_mean: float = param(0.0, "gaussian posterior: prior mean of every arm")
    prior_var: float = param(1.0, "gaussian posterior: prior variance", low=0.0, low_open=True)
    noise_var: float = param(1.0, "gaussian posterior: known reward variance", low=0.0, low_open=True)


class Thompson(Agent):
    name = "thompson"
    Config = ThompsonConfig
    action_spaces = (spaces.Discrete,)
    log_every = LOG_EVERY

    def build(self):
        c = self.cfg
        bandit = bandit_env(self.name, self.run.env_id)
        family = c.posterior if c.posterior != "auto" else ("beta" if isinstance(bandit, BernoulliBandit)
                                                            else "gaussian")
        self.algorithm = (ThompsonBernoulli(bandit.k, c.prior_alpha, c.prior_beta) if family == "beta"
                          else ThompsonGaussian(bandit.k, c.prior_mean, c.prior_var, c.noise_var))
        self.regret = Regret(bandit.gaps)

    def act(self, obs, deterministic: bool = False):
        return bandit_act(self.algorithm, obs, deterministic, self.regret.plays, self.rng)

    def behaviour_policy(self):
        return BanditPolicy(self.algorithm, self.regret.plays, self.rng)

    def rollout_spec(self):
        return "steps", 1

    def update(self, batch, progress):
        return bandit_update(self.algorithm, self.regret, batch)

    def summary(self) -> dict:
        return self.regret.summary()

    def modules(self):
        return {}

    def extra_state(self):
        return bandit_state(self.algorithm, self.regret)

    def load_extra_state(self, state):
        load_bandit_state(self.algorithm, self.regret, state)
