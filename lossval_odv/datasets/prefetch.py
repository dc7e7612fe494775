"""``lossval-odv prefetch``: download the datasets once, for offline machines.

For each dataset, :func:`prefetch` loads OpenML's copy with ``fetch_openml`` (scikit-learn's
cache, else the network), checks its shape, and writes ``NAME.csv.gz`` (feature columns as
OpenML gives them, categorical ones included, then ``target``; gzip ``mtime=0`` so the same
data gives the same sha256) and ``manifest.json``. Both are written atomically (temporary
file in the same directory, then rename): a failure leaves no partial file.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from lossval_odv.atomic_files import write_bytes
from lossval_odv.datasets.catalog import DATASETS, DatasetSpec, get_spec
from lossval_odv.datasets.errors import DatasetError, PrefetchError
from lossval_odv.datasets.sources import (
    ENV_DATA_DIR,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    TARGET,
    RawDataset,
    fetch_from_openml,
    read_manifest,
)


def encode_dataset(raw: RawDataset) -> bytes:
    """The ``NAME.csv.gz`` bytes of a dataset (deterministic: gzip ``mtime=0``)."""
    if TARGET in raw.features.columns:
        raise PrefetchError(f"a feature column is named {TARGET!r}, which the layout reserves")
    frame = raw.features.copy()
    frame[TARGET] = raw.target.to_numpy()
    text = frame.to_csv(index=False, lineterminator="\n")
    return gzip.compress(text.encode("utf-8"), mtime=0)


def write_dataset(data_dir: Path, spec: DatasetSpec, raw: RawDataset) -> dict:
    """Write ``spec``'s file into ``data_dir``; return its manifest entry."""
    data = encode_dataset(raw)
    write_bytes(data_dir / spec.file_name, data)
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "rows": len(raw.features),
        "n_features": raw.features.shape[1],
        "categorical": list(raw.categorical),
        "task": spec.task,
        "openml_id": spec.openml_id,
        "source": raw.source,
    }


def write_manifest(data_dir: Path, files: dict[str, dict]) -> Path:
    """Write ``manifest.json`` (sorted, one entry per file) atomically."""
    path = data_dir / MANIFEST_NAME
    content = {"format": MANIFEST_FORMAT, "files": dict(sorted(files.items()))}
    write_bytes(path, (json.dumps(content, indent=2) + "\n").encode("utf-8"))
    return path


def prefetch(
    data_dir: str | os.PathLike[str],
    names: Sequence[str] | None = None,
    *,
    data_home: str | os.PathLike[str] | None = None,
) -> Path:
    """Download datasets from OpenML into ``data_dir``; return the manifest's path.

    Parameters
    ----------
    data_dir : path
        Target directory (created if needed). Existing manifest entries are kept.
    names : sequence of str, optional
        Datasets to fetch; all twelve by default.
    data_home : path, optional
        scikit-learn data home for ``fetch_openml``'s own cache.

    Raises
    ------
    UnknownDatasetError
        A name is not one of the datasets (checked before anything is downloaded).
    PrefetchError
        One or more datasets failed; the others are written and listed in the manifest.
    """
    specs = [get_spec(name) for name in (names if names else list(DATASETS))]
    directory = Path(data_dir).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    files = read_manifest(directory)
    home = None if data_home is None else Path(data_home)
    failures: dict[str, str] = {}
    for spec in specs:
        try:
            raw = fetch_from_openml(spec, home)
            files[spec.file_name] = write_dataset(directory, spec, raw)
        except Exception as exc:  # network, OpenML, shape and disk errors alike
            failures[spec.name] = f"{type(exc).__name__}: {exc}"
            continue
        write_manifest(directory, files)
    if failures:
        lines = "\n".join(f"  - {name}: {why}" for name, why in failures.items())
        raise PrefetchError(f"prefetch into {directory} failed for:\n{lines}")
    return directory / MANIFEST_NAME


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of ``lossval-odv prefetch``."""
    parser = argparse.ArgumentParser(
        prog="lossval-odv prefetch",
        description="Download the LossVal datasets from OpenML into a data directory "
        "(NAME.csv.gz + manifest.json with sha256), for offline use via "
        f"${ENV_DATA_DIR}.",
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get(ENV_DATA_DIR),
        help=f"target directory (default: ${ENV_DATA_DIR})",
    )
    parser.add_argument(
        "--names", nargs="+", metavar="NAME", help=f"datasets (default: all): {', '.join(DATASETS)}"
    )
    return parser


def prefetch_main(argv: list[str] | None = None) -> int:
    """Entry point of ``lossval-odv prefetch``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error(f"--data-dir is required when ${ENV_DATA_DIR} is not set")
    try:
        for name in args.names or []:
            get_spec(name)
        manifest = prefetch(args.data_dir, args.names)
    except DatasetError as exc:
        print(f"lossval-odv prefetch: {exc}")
        return 1
    print(f"wrote {manifest}")
    return 0
