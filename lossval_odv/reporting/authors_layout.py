"""The LossVal authors' published result layout (twibiral/LossVal, ``results/``).

Detection F1 of every run, one long-format CSV per (kind, task, dataset, noise type)::

    <root>/<baselines|lossval>/<classification|regression>/<dataset>/<file>

with ``<file>`` one of ``DETECTION_FILES`` and columns ``AUTHORS_COLUMNS``: one row per
(run, method); ``method`` is the evaluator's class name with its budget, e.g.
``DataOob(num_models=1000)``; ``model`` names the prediction model.
"""

from __future__ import annotations

from pathlib import Path

# our noise type -> the authors' file
DETECTION_FILES = {
    "label": "noisy_label_detection_f1_scores.csv",
    "feature": "noisy_feature_detection_f1_scores.csv",
    "mixed": "mixed_noise_detection_f1_scores.csv",
}
AUTHORS_COLUMNS = ["kmeans_f1", "method", "dataset", "noise_rate", "model"]
KINDS = ("baselines", "lossval")  # the authors keep their own method's results apart
TASKS = ("classification", "regression")


def detection_file(root: Path, kind: str, task: str, dataset: str, noise: str) -> Path:
    """Where the authors' layout keeps one (kind, task, dataset, noise type)'s F1 scores."""
    return root / kind / task / dataset / DETECTION_FILES[noise]
