"""The course's half-cheetah (CS285 HW4's ``cheetah`` env), for model-based RL: ``deeprl/Cheetah-v0``.

The MuJoCo model is Gymnasium's ``half_cheetah.xml``; what differs is what the agent sees and is paid:

- Observation, float64 ``(21,)``: ``qpos`` (9, the root ``x`` included) ``++ qvel`` (9) ``++`` the
  torso's centre of mass (3). ``obs[9]`` is the forward velocity.
- Reward, a function of the observation after the step (so a model-based agent can score imagined
  transitions with it, ``deeprl.envs.rewards``)::

      r = obs[9] - 10 [obs[6] > 0.2] - 10 [obs[7] > 0] - 10 [obs[8] > 0]

  the forward velocity, less 10 for each front-leg joint (thigh, shin, foot) bent past its range.
- One MuJoCo step per env step (``dt = 0.01``), no termination, a 500-step time limit.
- Starts: ``qpos`` = the model's ``+ U(-0.1, 0.1)``, ``qvel`` = the model's ``+ 0.1 N(0, 1)``.

How ``HalfCheetah-v5`` differs: five MuJoCo steps per env step (``dt = 0.05``) and 1000 steps; its
observation leaves out the root ``x`` and the centre of mass (17 numbers); its reward is
``dx/dt - 0.1 ||a||^2``, with ``dx`` the change of the root ``x`` over the step, which is not a
function of its observation (``learn_reward=true`` learns it). Returns of the two are on different
scales: the course's targets (cheetah, random shooting 250-350; CEM >= 800) are for this env.
"""
from __future__ import annotations

import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco import MujocoEnv
from gymnasium.spaces import Box

CHEETAH_ID = "deeprl/Cheetah-v0"  # registered by deeprl.envs without importing this module (MuJoCo)
LEG_RANGE, SHIN_RANGE, FOOT_RANGE, PENALTY = 0.2, 0.0, 0.0, 10.0


def cheetah_reward(next_obs: np.ndarray) -> np.ndarray:
    """The course's reward on observations after the step, ``(..., 21) -> (...)``; works on NumPy
    arrays and torch tensors alike."""
    bent = ((next_obs[..., 6] > LEG_RANGE) * 1.0 + (next_obs[..., 7] > SHIN_RANGE) * 1.0
            + (next_obs[..., 8] > FOOT_RANGE) * 1.0)
    return next_obs[..., 9] - PENALTY * bent


class CheetahEnv(MujocoEnv, utils.EzPickle):
    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 100}

    def __init__(self, render_mode: str | None = None, width: int = 480, height: int = 480):
        utils.EzPickle.__init__(self, render_mode, width, height)
        observation_space = Box(-np.inf, np.inf, (21,), np.float64)
        MujocoEnv.__init__(self, "half_cheetah.xml", 1, observation_space=observation_space,
                           render_mode=render_mode, width=width, height=height,
                           default_camera_config={"distance": 4.0})

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos.flat, self.data.qvel.flat, self.get_body_com("torso").flat])

    def step(self, action):
        self.do_simulation(action, self.frame_skip)
        obs = self._get_obs()
        reward = float(cheetah_reward(obs))
        if self.render_mode == "human":
            self.render()
        return obs, reward, False, False, {"forward_velocity": float(obs[9])}

    def reset_model(self) -> np.ndarray:
        qpos = self.init_qpos + self.np_random.uniform(-0.1, 0.1, self.model.nq)
        qvel = self.init_qvel + 0.1 * self.np_random.standard_normal(self.model.nv)
        self.set_state(qpos, qvel)
        return self._get_obs()

