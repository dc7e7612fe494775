"""The two networks of the LossVal paper."""

from __future__ import annotations

from typing import Literal

from torch import nn

Task = Literal["classification", "regression"]

# the paper's protocol: classification 5 linear layers of width 100 with ReLU and a softmax output;
# regression 3 linear layers of width 90 with Tanh and a linear output.
DEFAULT_SHAPE: dict[str, tuple[int, int]] = {
    "classification": (5, 100),
    "regression": (3, 90),
}


def make_mlp(
    *,
    task: Task,
    n_features: int,
    n_outputs: int,
    n_linear: int | None = None,
    hidden_width: int | None = None,
) -> nn.Sequential:
    """Build the paper's MLP for ``task``.

    Parameters
    ----------
    task : {"classification", "regression"}
        Chooses the default shape, the activation (ReLU / Tanh) and the output
        (softmax probabilities / linear).
    n_features, n_outputs : int
        Input and output widths (``n_outputs`` = number of classes for classification).
    n_linear, hidden_width : int, optional
        Number of linear layers and width of the hidden ones; the paper's per-task
        defaults when None.
    """
    default_linear, default_width = DEFAULT_SHAPE[task]
    n_linear = default_linear if n_linear is None else n_linear
    hidden_width = default_width if hidden_width is None else hidden_width
    if n_linear < 1 or hidden_width < 1:
        raise ValueError(f"n_linear and hidden_width must be >= 1, got {n_linear}, {hidden_width}")
    activation = nn.ReLU if task == "classification" else nn.Tanh
    widths = [n_features] + [hidden_width] * (n_linear - 1) + [n_outputs]
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < n_linear - 1:
            layers.append(activation())
    if task == "classification":
        layers.append(nn.Softmax(dim=-1))
    return nn.Sequential(*layers)
