"""Publish a report as a whole: build it aside, then move it into place.

A report is several entries of the output directory (``results/``, ``tables/``,
``figures/``, ``report.md``). :func:`staged` gives a hidden staging directory to build
them in; :func:`publish` then moves them into the output directory, one ``rename`` each,
``report.md`` last. A journal file marks a staged report as complete before the first
move, so:

- a build that is killed leaves the published report untouched; its staging directory
  is removed by the next build;
- a publish that is killed between two moves is completed by the next build (or any
  call of :func:`recover`), so the output never stays a mix of two reports;
- nothing is left beside the report: no staging directory, journal or temporary file.

Files in a published directory that a report never writes (e.g. a user's notes, any
suffix outside ``report_suffixes``) are carried over into the new one.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

STAGE_NAME = ".report-staging"
OLD_NAME = ".report-old"
JOURNAL_NAME = ".report-publishing"


def _move_in(stage: Path, output_dir: Path, entries: Sequence[str]) -> None:
    old = output_dir / OLD_NAME
    old.mkdir(exist_ok=True)
    for name in entries:
        new, target = stage / name, output_dir / name
        if not new.exists():  # moved in before a kill
            continue
        if target.exists():
            target.rename(old / name)
        new.rename(target)
    (output_dir / JOURNAL_NAME).unlink()
    shutil.rmtree(old)
    shutil.rmtree(stage)


def recover(output_dir: Path, entries: Sequence[str]) -> None:
    """Finish a publish that was interrupted, or drop a build that was."""
    stage = output_dir / STAGE_NAME
    if (output_dir / JOURNAL_NAME).exists():
        _move_in(stage, output_dir, entries)
        return
    shutil.rmtree(stage, ignore_errors=True)
    shutil.rmtree(output_dir / OLD_NAME, ignore_errors=True)


def _carry_over(
    stage: Path, output_dir: Path, entries: Sequence[str], suffixes: Sequence[str]
) -> None:
    for name in entries:
        published = output_dir / name
        if not published.is_dir():
            continue
        for path in published.rglob("*"):
            if path.is_file() and path.suffix not in suffixes:
                copy = stage / name / path.relative_to(published)
                if not copy.exists():
                    copy.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, copy)


@contextmanager
def staged(
    output_dir: Path, entries: Sequence[str], *, report_suffixes: Sequence[str]
) -> Iterator[Path]:
    """A clean staging directory for ``entries``; published when the block completes.

    Parameters
    ----------
    output_dir : Path
        Where the entries are published.
    entries : sequence of str
        Names of the published entries, in publishing order (the entry point last).
    report_suffixes : sequence of str
        Suffixes of the files a report writes; other files of published directories are
        carried over.

    Yields
    ------
    Path
        The staging directory, to build the entries in.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    recover(output_dir, entries)
    stage = output_dir / STAGE_NAME
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _carry_over(stage, output_dir, entries, report_suffixes)
    (output_dir / JOURNAL_NAME).touch()
    _move_in(stage, output_dir, entries)
