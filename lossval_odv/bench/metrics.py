"""Detection metrics of data values against the planted noisy points."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def detection_metrics(values: np.ndarray, noisy: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC of 'low value = noisy' against the planted noisy points."""
    truth = np.zeros(len(values), dtype=bool)
    truth[noisy] = True
    score = -values  # lower value -> more likely noisy
    if not np.isfinite(score).all():
        score = np.nan_to_num(score, nan=0.0, posinf=1e300, neginf=-1e300)
    return {
        "auroc": float(roc_auc_score(truth, score)),
        "auprc": float(average_precision_score(truth, score)),
    }
