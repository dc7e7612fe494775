"""Failed cells: what caused them, whether a rerun retries them, and a summary by cause.

A failure is either

- ``environment``: the machine or its data, not the method, e.g. a dataset that is not
  available or whose file is refused, out of memory, a worker process that died. Such a
  failure is not final: it is not kept in the store, so the next run computes the cell
  again by itself;
- ``method``: an error of the method on this cell, deterministic under the cell's seeds.
  It stays in the store (a rerun would fail the same way) until ``--retry-failed``.

The cause is read from the error text (``ExceptionType: message``, then the traceback),
the one thing every backend records and every store holds, including rows written before
causes were told apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ENVIRONMENT, METHOD = "environment", "method"
TRACEBACK_MARK = "Traceback (most recent call last):"
# exception type names (first word of an error) that the environment causes
ENVIRONMENT_ERRORS = frozenset(
    {
        "DatasetUnavailableError",  # lossval_odv.datasets: no source has the data
        "DatasetIntegrityError",  # a data file refused (checksum, shape, content)
        "MemoryError",
        "OutOfMemoryError",  # torch.cuda and Ray
        "WorkerDied",  # the local pool: a worker killed (OOM killer, signal) too often
        "BrokenProcessPool",
        "WorkerCrashedError",  # Ray
        "NodeDiedError",
        "RaySystemError",
    }
)
# phrases in an error's first line that mean the same when the type says nothing
ENVIRONMENT_PHRASES = ("out of memory", "can't allocate memory", "worker died")
RETRY_HINT = {
    ENVIRONMENT: "environment failure: not kept; the next run retries these cells by itself",
    METHOD: "method error: kept in the store; after fixing the cause rerun with --retry-failed",
}


def error_message(error: str | None) -> str:
    """The full message of a recorded error, without its traceback."""
    text = (error or "").split(TRACEBACK_MARK, 1)[0].strip()
    return text or "(no error message)"


def failure_cause(error: str | None) -> str:
    """``environment`` or ``method`` for a recorded error text (see the module docstring)."""
    first = error_message(error).splitlines()[0]
    kind = first.split(":", 1)[0].split(" ", 1)[0].strip()
    if kind in ENVIRONMENT_ERRORS or any(p in first.lower() for p in ENVIRONMENT_PHRASES):
        return ENVIRONMENT
    return METHOD


@dataclass(frozen=True)
class FailureGroup:
    """Cells that failed with the same message."""

    cause: str
    message: str
    cells: tuple[str, ...]


def group_failures(failures: Iterable[tuple[str, str | None]]) -> list[FailureGroup]:
    """Group ``(cell description, error text)`` pairs by cause and full message.

    Groups come largest first, then by cause and message, so the order is deterministic.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for cell, error in failures:
        groups.setdefault((failure_cause(error), error_message(error)), []).append(cell)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [FailureGroup(cause, message, tuple(cells)) for (cause, message), cells in ordered]


def _examples(cells: tuple[str, ...], shown: int = 3) -> str:
    more = f" and {len(cells) - shown} more" if len(cells) > shown else ""
    return ", ".join(cells[:shown]) + more


def failures_text(groups: list[FailureGroup], total: int) -> str:
    """A terminal summary: one block per cause with its full message, indented."""
    failed = sum(len(g.cells) for g in groups)
    lines = [f"{failed} of {total} cells failed, {len(groups)} distinct cause(s):"]
    for number, group in enumerate(groups, 1):
        lines.append(
            f"[{number}] {len(group.cells)} cell(s), {RETRY_HINT[group.cause]}; "
            f"cells: {_examples(group.cells)}"
        )
        lines += [f"    {line}" for line in group.message.splitlines()]
    return "\n".join(lines)


def failures_markdown(groups: list[FailureGroup]) -> str:
    """The causes for the report: count, retry behaviour, example cells, full message."""
    parts = []
    for group in groups:
        parts.append(
            f"- {len(group.cells)} cell(s) ({RETRY_HINT[group.cause]}), e.g. "
            f"{_examples(group.cells)}:\n\n```text\n{group.message}\n```\n"
        )
    return "\n".join(parts)
