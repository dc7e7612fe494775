"""lossval-odv: LossVal data valuation as an OpenDataVal plugin.

Importing the package makes OpenDataVal 1.3.0 importable on the modern stack
(see :mod:`lossval_odv.compat`) and registers ``LossValODV`` in
``DataEvaluator.Evaluators``, and registers the paper's twelve datasets in
OpenDataVal's ``Register.Datasets`` (see :mod:`lossval_odv.datasets`).
"""

from lossval_odv import compat

compat.install()

from lossval_odv import datasets  # noqa: E402  (registers the paper's datasets)
from lossval_odv.core import fit_lossval  # noqa: E402
from lossval_odv.evaluators import LossValODV  # noqa: E402

__version__ = "0.1.0"

from lossval_odv.plugins import env_plugins as _env_plugins  # noqa: E402
from lossval_odv.plugins import load_plugins as _load_plugins  # noqa: E402

# $LOSSVAL_ODV_PLUGINS: extra dataset/evaluator modules, in the driver and every worker
_load_plugins(_env_plugins())

__all__ = ["LossValODV", "__version__", "compat", "datasets", "fit_lossval"]
