"""Seeding and RNG state capture (Python, NumPy global, torch, and an agent's Generator)."""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def rng_state(rng: np.random.Generator) -> dict:
    return {"python": random.getstate(), "numpy_global": np.random.get_state(legacy=False),
            "torch": torch.get_rng_state(), "generator": rng.bit_generator.state}


def set_rng_state(rng: np.random.Generator, state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np.random.set_state(state["numpy_global"])
    torch.set_rng_state(state["torch"])
    rng.bit_generator.state = state["generator"]
