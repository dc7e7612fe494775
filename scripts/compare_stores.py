"""Compare two results stores cell by cell: values, noisy indices, metrics and curves,
and their checks of the baselines' prediction model.

    python scripts/compare_stores.py results/quick/store.sqlite runs/quick/store.sqlite

Exits 0 when both hold the same cells and every cell's status, data values (the stored
float32 blobs, byte for byte), noisy indices, F1/AUROC/AUPRC and curves are identical,
and so are the model checks' diagnoses; else prints each difference and exits 1. Timings,
versions and dates are not compared.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from contextlib import closing

COMPARED = ("status", "f1", "auroc", "auprc", "curves", "values_blob", "noisy_blob")


def rows(path: str, table: str = "cells", columns: tuple[str, ...] = COMPARED) -> dict:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        if not exists:
            return {}
        query = f"SELECT key, {', '.join(columns)} FROM {table}"
        return {row[0]: row[1:] for row in conn.execute(query)}


def differences(reference: str, candidate: str) -> list[str]:
    found = []
    for table, columns in (("cells", COMPARED), ("model_checks", ("diagnosis",))):
        ref, new = rows(reference, table, columns), rows(candidate, table, columns)
        found += [f"only in {reference}: {table} {k}" for k in sorted(ref.keys() - new.keys())]
        found += [f"only in {candidate}: {table} {k}" for k in sorted(new.keys() - ref.keys())]
        for key in sorted(ref.keys() & new.keys()):
            for column, a, b in zip(columns, ref[key], new[key], strict=True):
                if a != b:
                    found.append(f"{table} {key}: {column} differs")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("candidate")
    args = parser.parse_args(argv)
    found = differences(args.reference, args.candidate)
    for line in found:
        print(line)
    n, checks = len(rows(args.reference)), len(rows(args.reference, "model_checks", ("diagnosis",)))
    print(f"{n} cells and {checks} model checks in {args.reference}; {len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
