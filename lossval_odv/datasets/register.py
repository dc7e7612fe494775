"""Registration of the twelve datasets in OpenDataVal's ``Register.Datasets``.

opendataval 1.3.0 already registers 2dplanes, electricity, MiniBooNE, pol, fried, nomao
and wave_energy with loaders that call ``fetch_openml`` on every load. ``Register``
stores one object per name in the class-level dict ``Register.Datasets`` and only
*warns* when a name is registered twice (the new object silently wins). To replace
upstream's entries cleanly, :func:`register_datasets` imports
``opendataval.dataloader`` first (so upstream's registrations have run), removes each
name from ``Register.Datasets`` (keeping the removed object in
:data:`UPSTREAM_REGISTRATIONS`), then registers the new loader: no duplicate-name
warning, and calling it again is a no-op replacement of our own entries. OpenDataVal is
imported inside the functions: ``lossval_odv.datasets`` imports before ``opendataval`` does
(which then registers through :func:`lossval_odv.compat.integrate`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from lossval_odv.datasets.catalog import DATASETS
from lossval_odv.datasets.loader import load_dataset

#: Upstream ``Register`` objects that were replaced, by name.
UPSTREAM_REGISTRATIONS: dict[str, Any] = {}
#: Every name OpenDataVal registered itself (its image, text and tabular sets), recorded
#: before this package or a plugin registers anything.
UPSTREAM_NAMES: set[str] = set()


def task_of(dataset: str) -> str:
    """``classification`` or ``regression``: the task of a dataset in OpenDataVal's
    registry (one-hot labels are classification)."""
    from opendataval.dataloader.register import Register

    return "classification" if Register.Datasets[dataset].one_hot else "regression"


def register_datasets() -> dict[str, Any]:
    """Register (or re-register) all twelve datasets; return the new ``Register`` entries."""
    import opendataval.dataloader  # noqa: F401  (runs upstream's registrations first)
    from opendataval.dataloader.register import Register

    if not UPSTREAM_NAMES:
        UPSTREAM_NAMES.update(n for n, e in Register.Datasets.items() if not _ours(e))
    registered = {}
    for name, spec in DATASETS.items():
        previous = Register.Datasets.pop(name, None)
        if previous is not None and not _ours(previous):
            UPSTREAM_REGISTRATIONS[name] = previous
        entry = Register(name, one_hot=spec.one_hot)
        entry.from_covar_label_func(partial(load_dataset, name))
        entry._lossval_odv = True
        registered[name] = entry
    return registered


def _ours(entry: Any) -> bool:
    return getattr(entry, "_lossval_odv", False)


def benchmark_datasets() -> list[str]:
    """The datasets the benchmark can run: the paper's twelve, then every dataset that a
    plugin registered (OpenDataVal's own image and text sets excluded), in registry order."""
    from opendataval.dataloader.register import Register

    plugins = [n for n in Register.Datasets if n not in UPSTREAM_NAMES and n not in DATASETS]
    return [*DATASETS, *plugins]
