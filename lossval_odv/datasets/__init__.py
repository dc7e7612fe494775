"""The LossVal paper's twelve datasets, registered in OpenDataVal under their names.

The first ``import opendataval`` after ``import lossval_odv`` registers them (see
:func:`lossval_odv.compat.integrate`), replacing opendataval 1.3.0's
``fetch_openml``-only loaders for the same names (see :mod:`.register`). Sources, in
order: a data directory of ``NAME.csv.gz`` verified by checksum, scikit-learn's OpenML
cache, OpenML over the network (see :mod:`.sources`). Preprocessing is OpenDataVal's
``load_openml`` (see :mod:`.preprocess`). ``docs/datasets.md`` has the details.
"""

from lossval_odv.datasets.catalog import DATASETS, SHIPPED_SHA256, DatasetSpec, get_spec
from lossval_odv.datasets.errors import (
    DatasetError,
    DatasetIntegrityError,
    DatasetUnavailableError,
    PrefetchError,
    UnknownDatasetError,
)
from lossval_odv.datasets.loader import available_offline, load_dataset, offline_source
from lossval_odv.datasets.prefetch import prefetch, prefetch_main
from lossval_odv.datasets.register import (
    UPSTREAM_REGISTRATIONS,
    benchmark_datasets,
    register_datasets,
)
from lossval_odv.datasets.sources import resolve_data_dir, set_data_dir

__all__ = [
    "DATASETS",
    "SHIPPED_SHA256",
    "UPSTREAM_REGISTRATIONS",
    "DatasetError",
    "DatasetIntegrityError",
    "DatasetSpec",
    "DatasetUnavailableError",
    "PrefetchError",
    "UnknownDatasetError",
    "available_offline",
    "benchmark_datasets",
    "get_spec",
    "load_dataset",
    "offline_source",
    "prefetch",
    "prefetch_main",
    "register_datasets",
    "resolve_data_dir",
    "set_data_dir",
]
