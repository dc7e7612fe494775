"""``lossval-odv prefetch``: download the benchmark datasets once, for offline use.

Writes ``NAME.csv.gz`` (raw features, then ``target``; gzip with mtime 0, so the same
data give the same bytes) and ``checksums.sha256`` into a data directory. Every file is
written to a temporary name and renamed when complete: an interrupted prefetch leaves
no partial file, and the manifest only lists finished files.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lossval_odv.datasets.catalog import DATASETS, spec_of
from lossval_odv.datasets.sources import (
    DATA_DIR_ENV,
    MANIFEST,
    from_openml,
    read_manifest,
    sha256_of,
)


def _atomic_write(path: Path, write) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prefetch(directory: str | Path, names: Sequence[str] | None = None) -> Path:
    """Download ``names`` (default: all 12) from OpenML into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(directory)
    for name in names or list(DATASETS):
        spec = spec_of(name)
        table = from_openml(spec, download=True)
        path = directory / f"{name}.csv.gz"

        def write_csv(tmp: Path, table=table) -> None:
            with (
                tmp.open("wb") as raw,
                gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
            ):
                gz.write(table.to_csv(index=False).encode())

        _atomic_write(path, write_csv)
        manifest[path.name] = sha256_of(path)
        lines = "".join(f"{digest}  {file}\n" for file, digest in sorted(manifest.items()))
        _atomic_write(directory / MANIFEST, lambda tmp, text=lines: tmp.write_text(text))
        print(f"{name}: {len(table)} rows -> {path}", file=sys.stderr)
    return directory


def prefetch_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lossval-odv prefetch", description=__doc__)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get(DATA_DIR_ENV) or "data",
        help=f"where to write (default: ${DATA_DIR_ENV} or ./data)",
    )
    parser.add_argument("--names", nargs="+", choices=list(DATASETS), help="default: all 12")
    args = parser.parse_args(argv)
    try:
        prefetch(args.data_dir, args.names)
    except Exception as exc:
        print(f"error: prefetch failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"datasets in {args.data_dir}; use them with {DATA_DIR_ENV}={args.data_dir}")
    return 0
