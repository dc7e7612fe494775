"""The 12 benchmark datasets, loadable by name through OpenDataVal, online or offline.

After ``import lossval_odv``, ``DataFetcher.setup("pol", ...)`` loads from the first
source that has the data: the data directory (``set_data_dir`` / the config's
``data_dir`` / ``$LOSSVAL_ODV_DATA``), scikit-learn's OpenML cache, then OpenML.
"""

from lossval_odv.datasets.catalog import DATASETS, DatasetSpec, spec_of
from lossval_odv.datasets.loading import load_dataset, register_all, source_of
from lossval_odv.datasets.prefetch import prefetch, prefetch_main
from lossval_odv.datasets.sources import DatasetError, data_dir, set_data_dir

register_all()

__all__ = [
    "DATASETS",
    "DatasetError",
    "DatasetSpec",
    "data_dir",
    "load_dataset",
    "prefetch",
    "prefetch_main",
    "set_data_dir",
    "source_of",
    "spec_of",
]
