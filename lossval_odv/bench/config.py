"""The benchmark's typed configuration: schema, validation and the paper's protocol defaults.

A config file is YAML. Unknown keys and bad values are errors that name the key and
the allowed values; nothing is run or written before a config validates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lossval_odv.bench import BACKEND_NAMES
from lossval_odv.bench.config_checks import config_problems, load_yaml
from lossval_odv.datasets.register import task_of

NoiseType = Literal["label", "feature", "mixed"]
BackendName = Literal[BACKEND_NAMES]
MAX_BATCH_RUNS = 64  # cells trained together at most; beyond, a batch gains little
MAX_NOISE_RATE = 0.5


def metric_names() -> tuple[str, ...]:
    """The names of OpenDataVal's utility metrics, as ``Metrics(name)`` takes them."""
    from opendataval.metrics import Metrics

    return tuple(member.name.lower() for member in Metrics)


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Strict):
    """Sizes of the random train / validation / test split (the paper's protocol, step 1)."""

    train: int = Field(1000, ge=10)
    valid: int = Field(100, ge=2)
    test: int = Field(3000, ge=10)


class TrainingOverride(_Strict):
    """Changes to how the baselines' prediction model trains for one task (unset: the
    protocol's, :data:`lossval_odv.bench.models.BASELINE_TRAIN_KWARGS`)."""

    epochs: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)


class MethodConfig(_Strict):
    """One valuation method: a registered OpenDataVal evaluator and its arguments.

    ``evaluator`` is a key of ``DataEvaluator.Evaluators`` (the lower-cased class name,
    e.g. ``lossvalodv``, ``knnshapley``, ``lavaevaluator``, ``dataoob``); ``params`` go
    to its constructor. ``label`` names the method in tables (defaults to ``name``).
    ``metric`` is the utility a retraining baseline scores its models with, a name of
    OpenDataVal's ``Metrics`` (``accuracy``, ``neg_l2``, ``neg_mse``); unset, OpenDataVal
    chooses (accuracy for classification, neg_mse for regression). Evaluators without a
    utility (KNN-Shapley, LAVA, LossVal, ...) ignore it. ``train`` changes how a
    retraining baseline fits the baselines' prediction model, per task, e.g.
    ``{classification: {lr: 0.001}}``; only evaluators that fit that model take it.
    ``tasks`` restricts the method to datasets of these tasks (unset: all).
    ``claims: false`` leaves the method out of the report's paper-claim checks (a
    diagnostic, such as a baseline run with the authors' regression metric); it is
    reported everywhere else. ``runs`` gives the method fewer runs than the config's
    (runs 0 to ``runs`` - 1 of every setting), e.g. an expensive baseline in a long run
    of cheap methods; the report states each method's runs.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    evaluator: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    metric: str | None = None
    train: dict[Literal["classification", "regression"], TrainingOverride] | None = None
    tasks: list[Literal["classification", "regression"]] | None = Field(None, min_length=1)
    claims: bool = True
    runs: int | None = Field(None, ge=1)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in metric_names():
            allowed = ", ".join(metric_names())
            raise ValueError(f"unknown metric {value!r}; OpenDataVal's Metrics: {allowed}")
        return value

    @field_validator("evaluator")
    @classmethod
    def _known_evaluator(cls, value: str) -> str:
        from opendataval.dataval import DataEvaluator

        key = value.lower()
        if key not in DataEvaluator.Evaluators:
            allowed = ", ".join(sorted(DataEvaluator.Evaluators))
            raise ValueError(f"unknown evaluator {value!r}; allowed: {allowed}")
        return key

    @model_validator(mode="after")
    def _train_fits_a_model(self) -> MethodConfig:
        from lossval_odv.evaluators.capabilities import capabilities_of

        if self.train and not capabilities_of(self.evaluator).trains_prediction_model:
            raise ValueError(
                f"train: evaluator {self.evaluator!r} does not fit the baselines' prediction "
                "model, so it has no training to change"
            )
        return self

    @property
    def display(self) -> str:
        return self.label or self.name

    @property
    def training(self) -> dict[str, dict[str, float]] | None:
        """``train`` as plain mappings without unset fields (None if nothing changes)."""
        if not self.train:
            return None
        return {task: o.model_dump(exclude_none=True) for task, o in sorted(self.train.items())}


class DatasetEntry(_Strict):
    """A dataset from a file or an OpenML id (see :mod:`lossval_odv.datasets.tables`).

    ``file`` (a CSV, CSV.gz or Parquet path, relative to the config file) with its
    ``target`` column, or ``openml`` (an id; ``target`` defaults to OpenML's); ``task``
    is required (never guessed); ``name`` is the registry name (default: the file name
    without suffix, or ``openml-ID``). A file is read and checked when the config is.
    """

    file: str | None = None
    openml: int | None = Field(None, ge=1)
    target: str | None = None
    task: Literal["classification", "regression"]
    name: str | None = None
    _source: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _load(self, info: ValidationInfo) -> DatasetEntry:
        from lossval_odv.datasets.errors import DatasetError
        from lossval_odv.datasets.tables import file_source, openml_source

        if (self.file is None) == (self.openml is None):
            raise ValueError("give either file: (with target:) or openml:, not both or neither")
        try:
            if self.file is not None:
                if self.target is None:
                    raise ValueError("file: needs target: (the target column's name)")
                base = Path((info.context or {}).get("base_dir", "."))
                self._source = file_source(
                    base / Path(self.file).expanduser(),
                    target=self.target,
                    task=self.task,
                    name=self.name,
                )
            else:
                self._source = openml_source(
                    self.openml, task=self.task, target=self.target, name=self.name
                )
        except DatasetError as error:
            raise ValueError(str(error)) from None
        return self

    @property
    def source(self):
        """The :class:`~lossval_odv.datasets.tables.TableSource` (checksum included)."""
        return self._source


# a registered name, or a mapping; the tag keeps errors to the branch the entry took
_ENTRY_TAG = "mapping"
DatasetItem = Annotated[
    Annotated[str, Tag("name")] | Annotated[DatasetEntry, Tag(_ENTRY_TAG)],
    Discriminator(lambda value: "name" if isinstance(value, str) else _ENTRY_TAG),
]


class ExperimentsConfig(_Strict):
    """Which experiments run after the values (the paper's protocol, steps 4-6)."""

    detection: bool = True
    removal: bool = True
    removal_percentile: float = Field(0.05, gt=0, lt=0.5)
    removal_models: list[Literal["paper", "mlp"]] = Field(default_factory=lambda: ["paper"])
    discovery: bool = True


class BenchmarkConfig(_Strict):
    """A benchmark: datasets x noise types x noise rates x runs x methods."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    datasets: list[DatasetItem] = Field(min_length=1)
    noise_types: list[NoiseType] = Field(min_length=1)
    noise_rates: list[float] = Field(min_length=1)
    runs: int = Field(5, ge=1)
    seed: int = Field(0, ge=0)
    split: SplitConfig = SplitConfig()
    methods: list[MethodConfig] = Field(min_length=1)
    experiments: ExperimentsConfig = ExperimentsConfig()
    device: str = "cpu"
    data_dir: str | None = None
    output_dir: str | None = None
    reference: str | None = None
    plugins: list[str] = Field(default_factory=list)
    backend: BackendName = "auto"
    n_jobs: int | None = Field(None, ge=1)
    ray_address: str | None = None
    gpus_per_task: float | None = Field(None, ge=0)
    batch_lossval: bool = True
    max_batch_runs: int = Field(MAX_BATCH_RUNS, ge=1)
    max_retries: int = Field(2, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _import_plugins(cls, data: Any) -> Any:
        """Import the config's plugin modules first: their datasets/evaluators count."""
        if isinstance(data, dict) and data.get("plugins"):
            from lossval_odv.plugins import load_plugins

            plugins = data["plugins"]
            if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
                raise ValueError("plugins must be a list of module names")
            try:
                load_plugins(plugins)
            except ImportError as error:
                raise ValueError(str(error)) from None
        return data

    @field_validator("noise_rates")
    @classmethod
    def _rates_in_range(cls, rates: list[float]) -> list[float]:
        # the noisy points must be a minority: 2-means detection calls the low-value
        # cluster noisy, and at 0.5 or more the noise functions corrupt the majority
        for rate in rates:
            if not 0 < rate < MAX_NOISE_RATE:
                raise ValueError(
                    f"noise rate {rate} must be strictly between 0 and {MAX_NOISE_RATE} "
                    "(noisy points a minority, as the 2-means detection assumes)"
                )
        return rates

    @field_validator("reference")
    @classmethod
    def _reference_exists(cls, path: str | None) -> str | None:
        # a results tree in the authors' layout, compared in the report (reporting.reference)
        if path is not None and not Path(path).is_dir():
            raise ValueError(f"reference directory {path} does not exist")
        return path

    @field_validator("datasets")
    @classmethod
    def _known_datasets(cls, entries: list[str | DatasetEntry]) -> list[str | DatasetEntry]:
        from lossval_odv.datasets import benchmark_datasets

        from opendataval.dataloader import Register

        # any registered name is accepted (OpenDataVal's own tabular sets too); the
        # message lists the benchmark's, not OpenDataVal's image and text sets
        unknown = [n for n in entries if isinstance(n, str) and n not in Register.Datasets]
        if unknown:
            runnable = benchmark_datasets()
            raise ValueError(
                f"unknown dataset(s) {unknown}; the benchmark runs tabular datasets: "
                f"{', '.join(runnable)}, a file or an OpenML id ({{file: PATH, target: "
                "COLUMN, task: classification|regression}, {openml: ID, task: ...}), and "
                "those of plugin modules (`plugins:` or $LOSSVAL_ODV_PLUGINS); "
                "`lossval-odv datasets` lists them"
            )
        return entries

    @model_validator(mode="after")
    def _register_tables(self) -> BenchmarkConfig:
        """Register the file and OpenML datasets, so that they load by name here."""
        from lossval_odv.datasets.errors import DatasetError
        from lossval_odv.datasets.tables import register_table

        for index, entry in enumerate(self.datasets):
            if isinstance(entry, DatasetEntry):
                try:
                    register_table(entry.source)
                except DatasetError as error:
                    raise ValueError(f"datasets.{index}: {error}") from None
        return self

    @property
    def dataset_names(self) -> list[str]:
        """Registry names of the datasets, in the config's order."""
        return [e if isinstance(e, str) else e.source.name for e in self.datasets]

    @property
    def table_sources(self) -> dict:
        """Name -> :class:`~lossval_odv.datasets.tables.TableSource` of the file and
        OpenML datasets."""
        return {e.source.name: e.source for e in self.datasets if isinstance(e, DatasetEntry)}

    @model_validator(mode="after")
    def _unique_method_names(self) -> BenchmarkConfig:
        names = [m.name for m in self.methods]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"method names must be unique, repeated: {duplicates}")
        return self

    @model_validator(mode="after")
    def _methods_have_datasets(self) -> BenchmarkConfig:
        tasks = {task_of(name) for name in self.dataset_names}
        for method in self.methods:
            if method.tasks is not None and not tasks & set(method.tasks):
                raise ValueError(
                    f"method {method.name!r} runs on {' and '.join(method.tasks)} datasets "
                    f"only (its tasks), and the config has none"
                )
        return self

    @model_validator(mode="after")
    def _method_runs_within_the_configs(self) -> BenchmarkConfig:
        for method in self.methods:
            if method.runs is not None and method.runs > self.runs:
                raise ValueError(
                    f"method {method.name!r} asks for {method.runs} runs, more than the "
                    f"config's runs ({self.runs})"
                )
        return self

    def resolved_output_dir(self, override: str | Path | None = None) -> Path:
        """Where the store and exports go: the override, the config's, or runs/<name>."""
        if override is not None:
            return Path(override)
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.name


def _format_error(source: str, error: ValidationError) -> str:
    lines = [f"invalid config {source}:"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"] if p != _ENTRY_TAG) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "literal_error":
            message = f"{message} (got {item.get('input')!r})"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def parse_config(
    data: Any, *, source: str = "<dict>", base_dir: str | Path = "."
) -> BenchmarkConfig:
    """Validate a mapping into a :class:`BenchmarkConfig`, or raise :class:`ConfigError`.

    ``base_dir`` is where the relative ``file:`` paths of ``datasets`` start (the config
    file's directory when read by :func:`load_config`).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config {source}: expected a mapping of keys, got {data!r}")
    try:
        config = BenchmarkConfig.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as error:
        raise ConfigError(_format_error(source, error)) from None
    problems = config_problems(
        datasets=config.dataset_names,
        noise_rates=config.noise_rates,
        methods=config.methods,
        device=config.device,
    )
    if problems:
        raise ConfigError("\n".join([f"invalid config {source}:", *(f"  {p}" for p in problems)]))
    return config


def load_config(path: str | Path) -> BenchmarkConfig:
    """Read and validate a YAML config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    return parse_config(data, source=str(path), base_dir=path.parent)
