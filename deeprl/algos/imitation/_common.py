"""What behaviour cloning and DAgger share: the policy network (encoder, MLP, a head from
deeprl.nn.bc_heads), the supervised loss, the demonstrations (loaded or collected from the
expert) with their observation histories, and the expert's reference return.
"""
from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from deeprl.core.errors import ConfigError, DatasetError, SpaceError
from deeprl.data.demos import Demonstrations, load_demos
from deeprl.envs.make import obs_space_of
from deeprl.experts import Expert, _same_space, load_expert, rollout_expert
from deeprl.nn.bc_heads import make_head
from deeprl.nn.networks import mlp
from deeprl.nn.optim import Adam

HEADS = ("auto", "gaussian", "mixture", "autoregressive", "categorical")
DEMO_SEED = 500_000  # demonstration episodes use seeds DEMO_SEED + 1000 * seed + i (evaluation: 1_000_000 + ...)


class ImitationPolicy(nn.Module):
    """pi_theta(a | o): flattened observation (or history) -> MLP -> a distribution head."""

    def __init__(self, obs_space: spaces.Space, act_space: spaces.Space, hidden: tuple[int, ...], activation: str,
                 head: str, **head_kw):
        super().__init__()
        in_dim = int(spaces.flatdim(obs_space))
        self.trunk = mlp(in_dim, hidden, None, activation)
        out = hidden[-1] if hidden else in_dim
        kind = head if head != "auto" else ("categorical" if isinstance(act_space, spaces.Discrete) else "gaussian")
        self.head = make_head(kind, out, act_space, **head_kw)
        self.kind = kind

    def forward(self, obs: torch.Tensor):
        return self.head(self.trunk(obs.float().reshape(obs.shape[0], -1)))


def init_learner(agent) -> None:
    """The state BC and DAgger share: the policy, its optimiser, and (filled by ``prepare``)
    the expert, the training data and the expert's reference return."""
    agent.policy = make_policy(agent)
    agent.optimizer = Adam(agent.policy.parameters(), lr=agent.cfg.learning_rate)
    agent.expert = None
    agent.data = None  # (observations, expert actions) as tensors
    agent.reference = {}


def policy_act(policy: ImitationPolicy, obs: torch.Tensor, deterministic: bool):
    """(actions, log-probs): the head's mode, or a sample."""
    dist = policy(obs)
    a = dist.mode() if deterministic else dist.sample()
    return a, dist.log_prob(a)


def make_policy(agent) -> ImitationPolicy:
    c = agent.cfg
    kw = {"mixture": {"n_components": c.n_components}, "autoregressive": {"bins": c.bins}}
    kind = c.policy_head if c.policy_head != "auto" else None
    policy = ImitationPolicy(agent.obs_space, agent.act_space, c.hidden_sizes, c.activation, c.policy_head,
                             **kw.get(kind, {}))
    if c.loss == "mse" and policy.kind != "gaussian":
        raise ConfigError(f"loss='mse' regresses the mean of a Gaussian head; policy_head={c.policy_head!r} "
                          "needs loss='nll'")
    return policy.to(agent.device)


def imitation_loss(policy: ImitationPolicy, obs: torch.Tensor, actions: torch.Tensor, loss: str) -> torch.Tensor:
    """-E[log pi(a_expert | o)] (``nll``) or E||mu(o) - a_expert||^2 (``mse``)."""
    dist = policy(obs)
    if loss == "mse":
        return (dist.mode() - actions).pow(2).sum(-1).mean()
    return -dist.log_prob(actions).mean()


def history_stacks(observations: np.ndarray, episode_lengths: np.ndarray, k: int) -> np.ndarray:
    """``(N, k, *obs)`` stacks of each step's last ``k`` observations within its episode, the
    episode's first observation repeated before it began (gymnasium's FrameStackObservation
    with ``padding_type='reset'``, which ``obs_history`` applies to the env)."""
    if k <= 1:
        return observations
    n = len(observations)
    starts = np.repeat(np.cumsum(episode_lengths) - episode_lengths, episode_lengths)
    t = np.arange(n)
    idx = np.maximum(t[:, None] - np.arange(k - 1, -1, -1)[None, :], starts[:, None])
    return observations[idx]


def current_obs(obs: np.ndarray, k: int) -> np.ndarray:
    """The newest observation of each history stack (what the expert sees)."""
    return obs[:, -1] if k > 1 else obs


def base_spaces(agent) -> tuple[spaces.Space, spaces.Space]:
    """The env's spaces without the observation history."""
    if agent.run.obs_history <= 1:
        return agent.obs_space, agent.act_space
    return obs_space_of(agent.run.env_id, agent.run.dict_obs)


def get_expert(agent, required: bool) -> Expert | None:
    """The configured expert, checked against the env; None when optional and unavailable."""
    c = agent.cfg
    try:
        return load_expert(c.expert, agent.run.env_id, seed=agent.run.seed)
    except ConfigError:
        if required or c.expert != "auto":
            raise
        return None


def get_demos(agent, expert: Expert | None) -> Demonstrations:
    """Demonstrations from ``cfg.demos`` (a dataset path or id), else ``cfg.demo_episodes``
    episodes of the expert; checked against the env's spaces."""
    c = agent.cfg
    obs_space, act_space = base_spaces(agent)
    if c.demos:
        demos = load_demos(c.demos)
        for what, theirs, ours in (("observation", demos.observation_space, obs_space),
                                   ("action", demos.action_space, act_space)):
            if theirs is not None and not _same_space(theirs, ours):
                raise SpaceError(f"demonstrations {c.demos} have {what} space {theirs} but {agent.run.env_id} "
                                 f"has {ours}")
        if demos.observations.shape[1:] != obs_space.shape or len(demos) == 0:
            raise DatasetError(f"demonstrations {c.demos}: observations of shape {demos.observations.shape[1:]} "
                               f"do not fit {agent.run.env_id}'s {obs_space.shape} (or the dataset is empty)")
        return demos
    if expert is None:
        raise ConfigError(f"{agent.name}: no demonstrations: set demos=PATH or an expert (expert=auto has no "
                          f"shipped expert for {agent.run.env_id})")
    episodes = rollout_expert(expert, agent.run.env_id, c.demo_episodes, DEMO_SEED + 1000 * agent.run.seed)
    return Demonstrations.from_episodes(episodes, obs_space, act_space, agent.run.env_id,
                                        {"expert": expert.name})


def action_tensor(actions: np.ndarray, act_space: spaces.Space, device) -> torch.Tensor:
    if isinstance(act_space, spaces.Discrete):
        return torch.as_tensor(np.asarray(actions).reshape(-1), dtype=torch.long, device=device)
    return torch.as_tensor(np.asarray(actions, np.float32).reshape(len(actions), -1), device=device)


def expert_reference(agent, expert: Expert | None, demos: Demonstrations) -> dict:
    """``expert_return_mean``: the expert's deterministic policy evaluated over as many episodes
    as the learner's evaluation; without an expert, the demonstrations' mean return."""
    from deeprl.data.evaluate import evaluate

    out = {"demo_episodes": int(demos.num_episodes), "demo_steps": int(len(demos)),
           "demo_return_mean": float(np.mean(demos.episode_returns())) if demos.num_episodes else None}
    if expert is not None and agent.run.eval_episodes:
        ev = evaluate(expert, agent.run.eval_episodes, seed=10_000 + agent.run.seed,
                      env_id=agent.run.env_id)
        out.update(expert=expert.name, expert_return_mean=ev["eval/return_mean"],
                   expert_return_std=ev["eval/return_std"])
    else:
        out.update(expert=expert.name if expert else None, expert_return_mean=out["demo_return_mean"])
    return out


def demo_tensors(agent, demos: Demonstrations) -> tuple[torch.Tensor, torch.Tensor]:
    """The demonstrations as training tensors: observation histories and expert actions."""
    obs = history_stacks(demos.observations, demos.episode_lengths, agent.run.obs_history)
    return (torch.as_tensor(np.asarray(obs, np.float32), device=agent.device),
            action_tensor(demos.actions, agent.act_space, agent.device))


def imitation_step(agent, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """One Adam step of the imitation loss on a minibatch; returns the loss."""
    loss = imitation_loss(agent.policy, obs, actions, agent.cfg.loss)
    agent.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    agent.optimizer.step()
    return loss.detach()


def fit(agent, steps: int) -> torch.Tensor:
    """``steps`` Adam steps of the imitation loss on random minibatches of ``agent.data``;
    returns the last minibatch's loss."""
    obs, actions = agent.data
    loss = torch.zeros(())
    for idx in torch.from_numpy(agent.rng.integers(0, len(actions), (steps, agent.cfg.batch_size))):
        loss = imitation_step(agent, obs[idx], actions[idx])
    return loss


def dataset_state(agent) -> dict:
    """The training data and the expert reference, for checkpoints (resume needs no expert
    rollouts)."""
    if agent.data is None:
        return {}
    rng = agent.expert.rng if agent.expert is not None else None
    return {"data_obs": agent.data[0].cpu().numpy(), "data_actions": agent.data[1].cpu().numpy(),
            "reference": dict(agent.reference), "expert_rng": rng.bit_generator.state if rng is not None else None}


def load_dataset_state(agent, state: dict) -> None:
    if state.get("data_obs") is not None:
        agent.data = (torch.as_tensor(state["data_obs"], device=agent.device),
                      torch.as_tensor(state["data_actions"], device=agent.device))
        agent.reference = dict(state.get("reference", {}))
        agent.pending_expert_rng = state.get("expert_rng")  # applied when the expert is loaded again


def restore_expert_rng(agent) -> None:
    """After a resume, continue a scripted expert's random choices where they stopped."""
    pending = getattr(agent, "pending_expert_rng", None)
    if pending is not None and agent.expert is not None and agent.expert.rng is not None:
        agent.expert.rng.bit_generator.state = pending
    agent.pending_expert_rng = None
