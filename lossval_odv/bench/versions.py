"""The library versions recorded with every cell."""

from __future__ import annotations

import platform


def versions() -> dict[str, str]:
    """Library versions that can change a result."""
    import geomloss
    import numpy as np
    import sklearn
    import torch

    import lossval_odv

    import opendataval

    return {
        "lossval_odv": lossval_odv.__version__,
        "opendataval": getattr(opendataval, "__version__", "1.3.0"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "geomloss": geomloss.__version__,
        "python": platform.python_version(),
    }
