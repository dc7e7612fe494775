"""``lossval-odv``: run a benchmark config, build its report, prefetch data, collect shards."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lossval_odv.bench.config import BACKEND_NAMES, ConfigError


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes i/N, e.g. 0/4, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard i/N needs 0 <= i < N, got {text!r}")
    return index, count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossval-odv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="compute every missing cell of a config, then report")
    run.add_argument("config", type=Path)
    run.add_argument("--output-dir", type=Path, help="store and exports (default: the config's)")
    run.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        help="where cells run (default: the config's; auto = local if >1 core, else serial)",
    )
    run.add_argument("--n-jobs", type=int, help="worker processes for the local backend")
    run.add_argument(
        "--ray-address", help="Ray cluster to join, e.g. auto or HOST:6379 (default: config's)"
    )
    run.add_argument("--shard", type=_shard, help="run only slice i of N (e.g. 0/4)")
    run.add_argument("--retry-failed", action="store_true", help="recompute failed cells")
    run.add_argument("--no-report", action="store_true", help="skip tables, figures and report")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    report = commands.add_parser("report", help="tables, figures and report from a store")
    report.add_argument("config", type=Path)
    report.add_argument("--output-dir", type=Path)

    collect = commands.add_parser("collect", help="merge shard stores into the config's store")
    collect.add_argument("config", type=Path)
    collect.add_argument("stores", type=Path, nargs="*", help="default: the config's shard stores")
    collect.add_argument("--output-dir", type=Path)

    compare = commands.add_parser(
        "compare", help="detection F1 side by side with results in the authors' layout"
    )
    compare.add_argument("config", type=Path)
    compare.add_argument("--reference", type=Path, help="default: the config's reference")
    compare.add_argument("--output-dir", type=Path, help="where the store is")
    compare.add_argument(
        "--to", type=Path, help="where the tables go (default: OUTPUT_DIR/reference_comparison)"
    )

    commands.add_parser(
        "prefetch", help="download the 12 datasets into a data directory", add_help=False
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["prefetch"]:
        from lossval_odv.datasets import prefetch_main

        return prefetch_main(argv[1:])
    args = _parser().parse_args(argv)
    import lossval_odv  # noqa: F401  (compatibility layer, registries)
    from lossval_odv.bench.config import load_config

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = config.resolved_output_dir(args.output_dir)
    from lossval_odv.bench.store import StoreError

    try:
        return _command(args, config, out)
    except (ConfigError, StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _command(args: argparse.Namespace, config, out: Path) -> int:
    """Run one command; 0 when done, 1 when a cell of the config failed."""
    if args.command == "run":
        from lossval_odv.bench.runner import run_benchmark

        summary = run_benchmark(
            config,
            output_dir=out,
            backend=args.backend,
            n_jobs=args.n_jobs,
            shard_spec=args.shard,
            retry_failed=args.retry_failed,
            progress=not args.quiet,
            ray_address=args.ray_address,
        )
        failed = 1 if summary.failures else 0
        if args.no_report or args.shard is not None:
            return failed
        if not summary.store.exists():  # every cell failed for environment reasons
            print("no report: no cell of the config is in the store yet", file=sys.stderr)
            return failed
        return _report(config, out, summary.store) or failed
    if args.command == "collect":
        from lossval_odv.bench.runner import STORE_NAME
        from lossval_odv.bench.store import ResultStore

        stores = args.stores or sorted(out.glob("store.shard*.sqlite"))
        if not stores:
            print(f"error: no shard stores given or found in {out}", file=sys.stderr)
            return 2
        store = ResultStore(out / STORE_NAME)
        with store.exclusive():
            added = store.merge_from(stores)
        print(f"collected {added} new cells from {len(stores)} store(s) into {out / STORE_NAME}")
        return 0
    if args.command == "compare":
        from lossval_odv.reporting.reference import ReferenceError
        from lossval_odv.reporting.report import compare_store

        try:
            print(compare_store(config, output_dir=out, source=args.reference, to=args.to))
        except ReferenceError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    if args.command == "report":
        from lossval_odv.bench.runner import STORE_NAME

        return _report(config, out, out / STORE_NAME)
    return 2


def _report(config, out: Path, store: Path) -> int:
    from lossval_odv.reporting.report import NothingToReportError, build_report

    if not store.exists():
        print(f"error: no results store at {store}; run the config first", file=sys.stderr)
        return 2
    try:
        paths = build_report(config, store_path=store, output_dir=out)
    except NothingToReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {paths['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
