"""Data evaluators that lossval-odv adds to OpenDataVal's registry."""

from lossval_odv.evaluators.lossval import LossValODV

__all__ = ["LossValODV"]
