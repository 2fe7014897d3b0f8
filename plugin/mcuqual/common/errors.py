"""One exception hierarchy, so the plugin can tell a user error from a bug.

Every message says what went wrong *and* what to do about it; the plugin prints
these without a traceback.
"""
from __future__ import annotations


class McuqualError(Exception):
    """Base of every error the suite raises on purpose."""


class ConfigError(McuqualError):
    """A bad option, board, model name or requirements file."""


class DatasetError(McuqualError):
    """The dataset is missing, truncated, corrupt or not what we expect."""


class ModelError(McuqualError):
    """A model folder, builder or artifact is missing or unusable."""


class MissingArtifactError(ModelError):
    """A zoo model has a builder but no trained artifacts yet."""


class QuantizationError(McuqualError):
    """The TFLite converter could not produce a full-integer INT8 model."""


class InterpreterError(McuqualError):
    """The tflite_micro reference interpreter rejected or failed on a model."""


class NotMeasurableError(McuqualError):
    """The chosen probe cannot produce this figure (yet)."""
