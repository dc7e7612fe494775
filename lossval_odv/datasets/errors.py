"""Errors raised by the dataset layer."""

from __future__ import annotations


class DatasetError(RuntimeError):
    """Base class of every dataset-layer error."""


class UnknownDatasetError(DatasetError, ValueError):
    """The name is not one of the paper's datasets."""


class DatasetUnavailableError(DatasetError):
    """No source (data directory, OpenML cache, network) could provide the dataset."""


class DatasetIntegrityError(DatasetError):
    """A local file exists but is not the expected one (checksum, shape, format)."""


class PrefetchError(DatasetError):
    """``prefetch`` could not download or write one or more datasets."""
