"""Errors the training stack raises on purpose.

Each is an :class:`edge_sdk.errors.EdgeSdkError`, so the CLI prints
``error: <message>`` and exits 2; every message names what was expected and what came.
"""

from __future__ import annotations

from edge_sdk.errors import EdgeSdkError


class TrainingError(EdgeSdkError):
    """Base class of training errors."""


class UnknownNameError(TrainingError, ValueError):
    """A model or dataset name that is not one of the known ones."""


class DatasetError(TrainingError, ValueError):
    """A dataset file or directory that cannot be read as asked."""


class FeatureSpecError(DatasetError):
    """A feature spec that is malformed or does not match the table (e.g. a missing column)."""


class MissingColumnError(FeatureSpecError, KeyError):
    """A column named in the feature spec is not in the table."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
