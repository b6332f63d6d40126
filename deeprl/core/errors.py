"""Errors a user can cause, each with the exit code the CLI returns for it."""


class DeeprlError(Exception):
    """Base class: the message is one line that names the problem and the valid choices."""

    exit_code = 2


class ConfigError(DeeprlError):
    """Unknown key, wrong type, out-of-range value, unknown preset/algorithm/env."""


class SpaceError(DeeprlError):
    """An algorithm cannot handle an environment's observation or action space."""


class CheckpointError(DeeprlError):
    """Missing, corrupt, untrusted or incompatible checkpoint or run directory."""


class DatasetError(DeeprlError):
    """Missing, truncated, corrupt or incompatible demonstration dataset."""


class NonFiniteError(DeeprlError):
    """A NaN or inf appeared in observations, rewards or losses during training."""

    exit_code = 3
