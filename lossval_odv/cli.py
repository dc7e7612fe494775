"""lossval-odv: run a benchmark config, build its report, list datasets and methods,
prefetch data, collect shards.

The parser is built without torch, OpenDataVal or the benchmark: each command imports
what it needs, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import textwrap
from pathlib import Path

from lossval_odv import __version__, compat
from lossval_odv.bench import BACKEND_NAMES
from lossval_odv.plugins import ENV_VAR as ENV_PLUGINS

# lossval_odv.datasets.sources.ENV_DATA_DIR / ENV_OFFLINE, written out: importing the
# datasets package loads OpenDataVal (tests/test_cli.py checks they agree)
ENV_DATA_DIR = "LOSSVAL_ODV_DATA"
ENV_OFFLINE = "LOSSVAL_ODV_OFFLINE"

DATA_DIR_RULE = (
    f"the first of: --data-dir, the config's data_dir, ${ENV_DATA_DIR}; "
    "then scikit-learn's OpenML cache, then OpenML"
)
ENVIRONMENT = f"""environment:
  {ENV_DATA_DIR}     data directory of NAME.csv.gz files (see `lossval-odv prefetch`);
                       `run --data-dir` and a config's data_dir take precedence
  {ENV_PLUGINS}  comma-separated modules that register extra datasets or
                       evaluators (as a config's plugins: do)
  {ENV_OFFLINE}  1: never download from OpenML

exit status: 0 done; 1 a cell of the config, or a check of its baselines' model, failed
(run); 2 bad usage, config, store, data or installation."""


def _text(paragraph: str) -> str:
    """A description wrapped for the raw formatter (which keeps the epilog's layout)."""
    return textwrap.fill(paragraph, width=88)


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes i/N, e.g. 0/4, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard i/N needs 0 <= i < N, got {text!r}")
    return index, count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lossval-odv",
        description=_text(
            "LossVal data valuation benchmark on OpenDataVal: run a config, "
            "build its report, compare it with the authors' results, list datasets and "
            "methods, prefetch data, collect shards."
        ),
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lossval-odv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = "benchmark config (YAML; see configs/)"
    output_help = "directory of the store and exports (default: the config's output_dir, "
    output_help += "else runs/<name>)"
    reference_help = (
        "results in the authors' layout to put side by side in the report (wins over the "
        "config's reference)"
    )

    run = commands.add_parser(
        "run",
        help="compute every missing cell of a config, then report",
        description=_text(
            "Compute every cell of CONFIG that the store lacks (a rerun resumes), "
            "then write tables, figures and report.md. Datasets come from "
            f"{DATA_DIR_RULE}."
        ),
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("config", type=Path, help=config_help)
    run.add_argument("--output-dir", type=Path, help=output_help)
    run.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help=f"data directory (NAME.csv.gz files); wins over the config's data_dir, "
        f"which wins over ${ENV_DATA_DIR}",
    )
    run.add_argument(
        "--device",
        metavar="DEVICE",
        help="where cells compute: cpu, cuda, cuda:N or auto (wins over the config's; "
        "part of each cell's key, so CPU and GPU cells are kept apart)",
    )
    run.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        help="where cells run (default: the config's; auto = local if >1 core, else serial)",
    )
    run.add_argument(
        "--n-jobs", type=int, metavar="N", help="worker processes for the local backend"
    )
    run.add_argument(
        "--ray-address", help="Ray cluster to join, e.g. auto or HOST:6379 (default: config's)"
    )
    run.add_argument("--shard", type=_shard, metavar="i/N", help="run only slice i of N (e.g. 0/4)")
    run.add_argument(
        "--methods",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        metavar="NAME,...",
        help="compute only these methods of the config (a piece; the report covers all)",
    )
    run.add_argument(
        "--retry-failed", action="store_true", help="recompute cells whose method failed"
    )
    run.add_argument("--no-report", action="store_true", help="skip tables, figures and report")
    run.add_argument("--reference", type=Path, metavar="DIR", help=reference_help)
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    report = commands.add_parser(
        "report",
        help="tables, figures and report of a config from its store",
        description=_text(
            "Write tables, figures and report.md from exactly the config's cells in its store."
        ),
    )
    report.add_argument("config", type=Path, help=config_help)
    report.add_argument("--output-dir", type=Path, help=output_help)
    report.add_argument("--reference", type=Path, metavar="DIR", help=reference_help)

    collect = commands.add_parser(
        "collect",
        help="merge shard stores into the config's store",
        description=_text("Merge the stores of `run --shard` jobs into the config's store."),
    )
    collect.add_argument("config", type=Path, help=config_help)
    collect.add_argument(
        "stores",
        type=Path,
        nargs="*",
        help="shard stores (default: store.shard*.sqlite in the output directory)",
    )
    collect.add_argument("--output-dir", type=Path, help=output_help)

    datasets = commands.add_parser(
        "datasets",
        help="the datasets the benchmark can run, and where each comes from here",
        description=_text(
            "List the benchmark's datasets (the paper's twelve, then those of "
            f"plugins: ${ENV_PLUGINS}): name, task, shape of the raw table, and whether it "
            f"loads here without the network (data directory: {DATA_DIR_RULE})."
        ),
    )
    datasets.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help=f"data directory to look in (default: ${ENV_DATA_DIR})",
    )

    compare = commands.add_parser(
        "compare", help="detection F1 side by side with results in the authors' layout"
    )
    compare.add_argument("config", type=Path, help=config_help)
    compare.add_argument("--reference", type=Path, help="default: the config's reference")
    compare.add_argument("--output-dir", type=Path, help="where the store is")
    compare.add_argument(
        "--to", type=Path, help="where the tables go (default: OUTPUT_DIR/reference_comparison)"
    )

    commands.add_parser(
        "methods",
        help="the valuation methods (evaluator registry keys) and their parameters",
        description=_text(
            "List the evaluator keys a config's methods can use (evaluator:), "
            "with their constructor parameters and defaults (params:): lossval-odv's, "
            f"OpenDataVal's and plugins' (${ENV_PLUGINS})."
        ),
    )

    commands.add_parser(
        "prefetch",
        help="download datasets into a data directory, for offline machines",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["prefetch"]:
            from lossval_odv.datasets import prefetch_main

            return prefetch_main(argv[1:])
        args = _parser().parse_args(argv)
        import opendataval  # noqa: F401  (every command needs it: registries, loaders)

        if args.command == "datasets":
            return _list_datasets(args.data_dir)
        if args.command == "methods":
            return _list_methods()
        return _config_command(args)
    except compat.OpenDataValNotInstalled as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _config_command(args: argparse.Namespace) -> int:
    from lossval_odv.bench.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if getattr(args, "data_dir", None) is not None:
        config = config.model_copy(update={"data_dir": str(args.data_dir)})
    if getattr(args, "device", None) is not None:
        from lossval_odv.bench.config_checks import device_problem

        problem = device_problem(args.device)
        if problem:
            print(f"error: --device: {problem}", file=sys.stderr)
            return 2
        config = config.model_copy(update={"device": args.device})
    if getattr(args, "reference", None) is not None:
        if not args.reference.is_dir():
            print(f"error: reference directory {args.reference} does not exist", file=sys.stderr)
            return 2
        config = config.model_copy(update={"reference": str(args.reference)})
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
            methods=args.methods,
            retry_failed=args.retry_failed,
            progress=not args.quiet,
            ray_address=args.ray_address,
        )
        failed = 0 if summary.ok else 1
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


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )


def _list_datasets(data_dir: Path | None) -> int:
    """Print each runnable dataset: name, task, raw shape, where it loads from here."""
    from lossval_odv.datasets import DATASETS, benchmark_datasets, offline_source
    from lossval_odv.datasets.sources import resolve_data_dir

    from opendataval.dataloader import Register

    directory = resolve_data_dir(data_dir)
    rows = [("NAME", "TASK", "ROWS x FEATURES", "AVAILABLE HERE")]
    missing = []
    for name in benchmark_datasets():
        if name in DATASETS:
            spec = DATASETS[name]
            shape = f"{' or '.join(map(str, spec.rows))} x {spec.n_features}"
            source = offline_source(name, directory)
            if source is None:
                missing.append(name)
            rows.append((name, spec.task, shape, source or f"no (OpenML {spec.openml_id})"))
        else:
            entry = Register.Datasets[name]
            task = "classification" if entry.one_hot else "regression"
            rows.append((name, task, "-", "plugin (loads when a cell needs it)"))
    print(_table(rows))
    print(f"\ndata directory: {directory or f'none (--data-dir or ${ENV_DATA_DIR})'}")
    if missing:
        names = " ".join(missing)
        print(
            _text(
                f"Not here: {', '.join(missing)}. A run downloads them from OpenML once (into "
                "scikit-learn's cache). For a machine without internet: where there is "
                f"internet, `lossval-odv prefetch --data-dir DIR --names {names}`, copy DIR "
                f"over, then set ${ENV_DATA_DIR}=DIR, a config's data_dir or run --data-dir."
            )
        )
    return 0


def _list_methods() -> int:
    """Print each registered evaluator key: origin, parameters with their defaults."""
    from lossval_odv.bench.config_checks import CELL_OWNED_PARAMS

    from opendataval.dataval import DataEvaluator

    rows = [("KEY", "FROM", "PARAMETERS (default)")]
    for key, cls in sorted(DataEvaluator.Evaluators.items()):
        module = cls.__module__
        if module.startswith("lossval_odv."):
            origin = "lossval-odv"
            counterpart = getattr(cls, "counterpart", None)
            if counterpart:
                origin += f", fast {counterpart}"
        elif module.startswith("opendataval."):
            origin = "OpenDataVal"
        else:
            origin = f"plugin {module}"
        params = [
            p.name if p.default is p.empty else f"{p.name}={p.default!r}"
            for p in inspect.signature(cls).parameters.values()
            if p.name not in CELL_OWNED_PARAMS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        rows.append((key, origin, ", ".join(params) or "-"))
    print(_table(rows))
    print()
    print(
        _text(
            "In a config: methods: [{name: ..., evaluator: KEY, params: {...}}]; random_state "
            "is set by the benchmark from each cell's seed. fast*: the estimator of the "
            "OpenDataVal counterpart named, with the model fits trained together."
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
