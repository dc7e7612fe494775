"""Plugin modules: extra datasets and evaluators that every process must register.

OpenDataVal keeps datasets (``Register.Datasets``) and evaluators
(``DataEvaluator.Evaluators``) in per-process registries filled at import time. A
dataset or evaluator defined outside this package is therefore visible in a worker
(a spawned pool process, a Ray worker on another machine) only if the worker imports
the module that defines it. Name such modules in either place:

- the environment variable ``LOSSVAL_ODV_PLUGINS`` (comma-separated module names),
  imported whenever ``lossval_odv`` is imported, in the driver and in every worker
  that inherits the environment;
- the config key ``plugins: [my_pkg.datasets, ...]``, imported before the config is
  validated (so its datasets and evaluators count as known) and passed by the
  backends to every worker, which imports them before computing a task.

A plugin module must be importable in the workers: on this machine that means on
``sys.path`` (the local pool and a local Ray cluster get the driver's path); on a Ray
cluster, installed on every node or shipped with ``ray job submit --working-dir``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable

ENV_VAR = "LOSSVAL_ODV_PLUGINS"


def env_plugins() -> list[str]:
    """Module names listed in ``$LOSSVAL_ODV_PLUGINS``."""
    return [name.strip() for name in os.environ.get(ENV_VAR, "").split(",") if name.strip()]


def load_plugins(names: Iterable[str]) -> list[str]:
    """Import each module (idempotent); a module that fails to import is an error."""
    loaded = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise ImportError(
                f"cannot import lossval-odv plugin module {name!r} (from the config's "
                f"'plugins' or ${ENV_VAR}): {error}"
            ) from error
        loaded.append(name)
    return loaded


def all_plugins(extra: Iterable[str] = ()) -> list[str]:
    """The environment's plugins and ``extra``, without repeats, in order."""
    return list(dict.fromkeys([*env_plugins(), *extra]))
