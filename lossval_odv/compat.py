"""The one place that knows OpenDataVal 1.3.0's and geomloss's quirks.

OpenDataVal 1.3.0 was released against torch 2.1, numpy<1.26 and pandas<2. We run it
on the modern stack and fix, openly, the few places where that breaks:

0. Its pins cannot be met next to ours, so it is not a dependency of our package: it is
   installed on its own with ``--no-deps`` (README, "Install"). :func:`install` checks
   first that OpenDataVal 1.3.0 is there and otherwise raises
   :class:`OpenDataValNotInstalled`, whose message gives the commands that install it.
1. ``opendataval`` imports ``torchvision`` and ``transformers`` eagerly, for its image
   and BERT modules, which the tabular benchmark never uses. When those packages are
   not installed, :func:`install` registers stand-in modules: importing succeeds, and
   any *use* of an image or NLP symbol raises :class:`ImportError` naming the missing
   package. Installed packages are never shadowed.
2. LAVA imports ``geomloss.utils``, which geomloss 0.3 moved to
   ``geomloss._legacy.utils``; :func:`install` aliases the old name.
3. ``opendataval.experiment.exper_methods.remove_high_low`` returns one score more than
   its ``axis`` when the training size is not a multiple of ``round(0.05 * n)``, which
   breaks ``ExperimentMediator.evaluate``. :func:`remove_high_low` here calls the
   upstream function and trims the curves to the axis it reports.
4. OpenDataVal's evaluators draw their own progress bars and warn about ``pin_memory``
   on every CPU fit; :func:`quiet_upstream` silences both inside a benchmark cell.
5. ``ExperimentMediator.compute_data_values`` turns evaluator errors into warnings
   unless ``raises_error=True``. The benchmark never relies on it: it trains each
   evaluator itself and records failures with their error (see ``bench/cell.py``).

How the integration is triggered (the design of ``import lossval_odv``): importing the
package does no work beyond calling :func:`integrate_on_import`, which puts a small finder
on ``sys.meta_path``. The first ``import opendataval`` (from user code, the benchmark or an
adapter) then runs :func:`install` *before* OpenDataVal's own code and, once OpenDataVal
has loaded, :func:`integrate`: the paper's datasets and this package's evaluators are
registered and the ``$LOSSVAL_ODV_PLUGINS`` modules imported. So ``import lossval_odv``
followed by any ``import opendataval...`` finds the registries filled, while
``import lossval_odv.core`` (LossVal without OpenDataVal) loads neither OpenDataVal nor
the benchmark. The alternative, an eager ``__init__`` that installs and registers, made
every import of the core pay for (and depend on) OpenDataVal.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partialmethod
from typing import Any

# Submodules opendataval imports at module level, and the names it takes from them.
_STANDINS: dict[str, dict[str, tuple[str, ...]]] = {
    "torchvision": {
        "torchvision": (),
        "torchvision.transforms": (),
        "torchvision.transforms.functional": (),
        "torchvision.datasets": (
            "CIFAR10",
            "CIFAR100",
            "MNIST",
            "STL10",
            "SVHN",
            "FashionMNIST",
            "VisionDataset",
        ),
        "torchvision.models": (),
        "torchvision.models.resnet": ("ResNet50_Weights", "resnet50"),
    },
    "transformers": {
        "transformers": ("DistilBertModel", "DistilBertTokenizerFast"),
    },
}

STANDIN_MARKER = "__lossval_odv_standin__"

#: The one OpenDataVal release this layer knows.
OPENDATAVAL_VERSION = "1.3.0"


class OpenDataValNotInstalled(ImportError):
    """OpenDataVal 1.3.0 is not installed; the message says how to install it."""


def opendataval_install_message(found: str | None) -> str:
    """The error for an environment whose OpenDataVal is ``found`` (``None``: none)."""
    return (
        f"lossval-odv needs OpenDataVal {OPENDATAVAL_VERSION} (found: {found or 'none'}), "
        "installed on its own because its pins (torch~=2.1, numpy<1.26, pandas<2) cannot "
        "be met next to lossval-odv's dependencies:\n"
        f"    pip install --no-deps opendataval=={OPENDATAVAL_VERSION}\n"
        "or, with uv:\n"
        f"    uv pip install --no-deps opendataval=={OPENDATAVAL_VERSION}"
    )


def installed_opendataval() -> str | None:
    """The version of the importable OpenDataVal, from its metadata (``None``: none)."""
    if importlib.util.find_spec("opendataval") is None:
        return None
    try:
        return importlib.metadata.version("opendataval")
    except importlib.metadata.PackageNotFoundError:
        return "a copy without package metadata"


def require_opendataval() -> None:
    """Raise :class:`OpenDataValNotInstalled` unless OpenDataVal 1.3.0 is installed.

    Reads the installed distribution's metadata only, so it runs before any OpenDataVal
    code does.
    """
    found = installed_opendataval()
    if found != OPENDATAVAL_VERSION:
        raise OpenDataValNotInstalled(opendataval_install_message(found))


class MissingOptionalDependency(ImportError):
    """Raised when an OpenDataVal feature needs a package that is not installed."""


class _MissingMeta(type):
    """Metaclass of stand-in symbols: calling them or reading any attribute raises."""

    _message: str

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise MissingOptionalDependency(cls._message)

    def __call__(cls, *_args: Any, **_kwargs: Any) -> Any:
        raise MissingOptionalDependency(cls._message)


def _missing_symbol(qualname: str, package: str) -> type:
    message = (
        f"{qualname} needs the package {package!r}, which is not installed. "
        f"lossval-odv only uses OpenDataVal's tabular code; `pip install {package}` "
        "to use OpenDataVal's image or NLP features."
    )
    name = qualname.rsplit(".", 1)[-1]
    return _MissingMeta(name, (), {"_message": message, STANDIN_MARKER: True})


class _StandinModule(types.ModuleType):
    def __init__(self, name: str, package: str) -> None:
        super().__init__(name)
        self.__path__: list[str] = []  # a package, so that submodules can be imported
        setattr(self, STANDIN_MARKER, True)
        self._package = package

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _missing_symbol(f"{self.__name__}.{attr}", self._package)


def _package_usable(package: str) -> bool:
    if importlib.util.find_spec(package) is None:
        return False
    try:
        importlib.import_module(package)
    except Exception as exc:  # a broken install (e.g. a torchvision built for another torch)
        warnings.warn(
            f"{package} is installed but fails to import ({exc}); lossval-odv replaces it "
            "with a stand-in so that OpenDataVal's tabular code still loads.",
            RuntimeWarning,
            stacklevel=3,
        )
        for mod in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[mod]
        return False
    return True


def _install_standins(package: str) -> None:
    modules = _STANDINS[package]
    for name in modules:
        if name not in sys.modules:
            sys.modules[name] = _StandinModule(name, package)
    for name, symbols in modules.items():
        module = sys.modules[name]
        for symbol in symbols:
            setattr(module, symbol, _missing_symbol(f"{name}.{symbol}", package))
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)


def _alias_geomloss_utils() -> None:
    import geomloss

    if hasattr(geomloss, "utils"):
        return
    legacy_utils = importlib.import_module("geomloss._legacy.utils")
    sys.modules["geomloss.utils"] = legacy_utils
    geomloss.utils = legacy_utils


def install() -> dict[str, str]:
    """Make ``import opendataval`` work on the modern stack; idempotent.

    Raises
    ------
    OpenDataValNotInstalled
        OpenDataVal 1.3.0 is not installed (see :func:`require_opendataval`).

    Returns
    -------
    dict[str, str]
        What was done for each quirk: ``"real"`` (nothing needed), ``"stand-in"``
        (a stand-in module was registered) or ``"aliased"``.
    """
    require_opendataval()
    report = {}
    for package in _STANDINS:
        module = sys.modules.get(package)
        if module is not None and getattr(module, STANDIN_MARKER, False):
            report[package] = "stand-in"
        elif module is not None or _package_usable(package):
            report[package] = "real"
        else:
            _install_standins(package)
            report[package] = "stand-in"
    import geomloss

    _alias_geomloss_utils()
    legacy = sys.modules.get("geomloss._legacy.utils")
    report["geomloss.utils"] = "aliased" if geomloss.utils is legacy else "real"
    return report


def integrate() -> None:
    """Register the paper's datasets and this package's evaluators in OpenDataVal's
    registries and import the ``$LOSSVAL_ODV_PLUGINS`` modules; idempotent."""
    from lossval_odv import datasets, evaluators, plugins

    datasets.register_datasets()
    evaluators.register_evaluators()
    plugins.load_plugins(plugins.env_plugins())


class _IntegratingLoader(importlib.abc.Loader):
    """Runs OpenDataVal's own loader, then :func:`integrate`; restores the original
    loader on the module so that nothing downstream sees this wrapper."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__.loader = self._loader
        module.__loader__ = self._loader
        self._loader.exec_module(module)
        integrate()


class _OpenDataValFinder(importlib.abc.MetaPathFinder):
    """Intercepts the first ``import opendataval``: :func:`install` first, then
    OpenDataVal loads, then :func:`integrate`. Removes itself on first use."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "opendataval":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _OpenDataValFinder)]
        install()
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _IntegratingLoader(spec.loader)
        return spec


def integrate_on_import() -> None:
    """What ``import lossval_odv`` does: :func:`integrate` now if OpenDataVal is already
    loaded, else at its first import (see the module docstring); idempotent."""
    if "opendataval" in sys.modules:
        install()
        integrate()
    elif not any(isinstance(f, _OpenDataValFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _OpenDataValFinder())


def remove_high_low(
    evaluator: Any,
    fetcher: Any = None,
    model: Any = None,
    data: dict[str, Any] | None = None,
    percentile: float = 0.05,
    plot: Any = None,
    metric: Any = None,
    train_kwargs: dict[str, Any] | None = None,
) -> dict[str, list]:
    """OpenDataVal's ``remove_high_low`` with curves as long as its axis.

    Upstream evaluates ``ceil(n / period)`` removal levels but reports an axis of
    ``floor(n / period)`` levels; when ``n`` is not a multiple of the period the extra
    trailing score (a model trained on fewer than ``period`` points) is dropped here so
    that every list lines up with ``axis``. Arguments are upstream's (``metric=None``
    means upstream's default, accuracy); the explicit signature lets
    ``ExperimentMediator.evaluate`` pass its model, metric and train_kwargs.
    """
    from opendataval.experiment.exper_methods import remove_high_low as upstream

    kwargs: dict[str, Any] = {"metric": metric} if metric is not None else {}
    result = upstream(
        evaluator,
        fetcher,
        model=model,
        data=data,
        percentile=percentile,
        plot=plot,
        train_kwargs=train_kwargs,
        **kwargs,
    )
    n_levels = len(result["axis"])
    return {key: list(values)[:n_levels] for key, values in result.items()}


@contextmanager
def quiet_upstream() -> Iterator[None]:
    """Silence OpenDataVal's per-evaluator progress bars and its ``pin_memory`` warning.

    Inside a benchmark, evaluators (Data-OOB, KNN-Shapley, LAVA, ...) each draw tqdm bars
    and OpenDataVal's DataLoaders warn about ``pin_memory`` on every CPU fit; the driver
    shows one progress bar for the grid instead. AME's ``LassoCV`` (OpenDataVal's estimator,
    which the fast AME reuses) warns of coordinate-descent non-convergence a dozen times a
    cell; its values are OpenDataVal's either way, so those warnings are silenced too.
    tqdm reads ``TQDM_DISABLE`` only at import, so this makes ``disable=True`` the default
    of bars created inside the block (a bar that passes ``disable`` itself keeps its
    choice) and restores it afterwards.
    """
    import tqdm.std
    from sklearn.exceptions import ConvergenceWarning

    original = vars(tqdm.std.tqdm)["__init__"]
    if isinstance(original, partialmethod):
        quiet = partialmethod(original.func, **{**original.keywords, "disable": True})
    else:
        quiet = partialmethod(original, disable=True)
    tqdm.std.tqdm.__init__ = quiet
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="'pin_memory' argument is set as true")
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            yield
    finally:
        tqdm.std.tqdm.__init__ = original
