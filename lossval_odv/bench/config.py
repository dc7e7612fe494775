"""The benchmark's typed configuration: schema, validation and the paper's protocol defaults.

A config file is YAML. Unknown keys and bad values are errors that name the key and
the allowed values; nothing is run or written before a config validates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lossval_odv.bench.config_checks import config_problems, load_yaml

NoiseType = Literal["label", "feature", "mixed"]
BackendName = Literal["auto", "serial", "local", "ray"]
BACKEND_NAMES: tuple[str, ...] = BackendName.__args__
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


class MethodConfig(_Strict):
    """One valuation method: a registered OpenDataVal evaluator and its arguments.

    ``evaluator`` is a key of ``DataEvaluator.Evaluators`` (the lower-cased class name,
    e.g. ``lossvalodv``, ``knnshapley``, ``lavaevaluator``, ``dataoob``); ``params`` go
    to its constructor. ``label`` names the method in tables (defaults to ``name``).
    ``metric`` is the utility a retraining baseline scores its models with, a name of
    OpenDataVal's ``Metrics`` (``accuracy``, ``neg_l2``, ``neg_mse``); unset, OpenDataVal
    chooses (accuracy for classification, neg_mse for regression). Evaluators without a
    utility (KNN-Shapley, LAVA, LossVal, ...) ignore it.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    evaluator: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    metric: str | None = None

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

    @property
    def display(self) -> str:
        return self.label or self.name


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
    datasets: list[str] = Field(min_length=1)
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
    def _known_datasets(cls, names: list[str]) -> list[str]:
        from opendataval.dataloader import Register

        unknown = [n for n in names if n not in Register.Datasets]
        if unknown:
            allowed = ", ".join(sorted(Register.Datasets))
            raise ValueError(f"unknown dataset(s) {unknown}; registered datasets: {allowed}")
        return names

    @model_validator(mode="after")
    def _unique_method_names(self) -> BenchmarkConfig:
        names = [m.name for m in self.methods]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"method names must be unique, repeated: {duplicates}")
        return self

    def resolved_output_dir(self, override: str | Path | None = None) -> Path:
        """Where the store and exports go: the override, the config's, or runs/<name>."""
        if override is not None:
            return Path(override)
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.name


def _format_error(source: str, error: ValidationError) -> str:
    lines = [f"invalid config {source}:"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "literal_error":
            message = f"{message} (got {item.get('input')!r})"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def parse_config(data: Any, *, source: str = "<dict>") -> BenchmarkConfig:
    """Validate a mapping into a :class:`BenchmarkConfig`, or raise :class:`ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config {source}: expected a mapping of keys, got {data!r}")
    try:
        config = BenchmarkConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_error(source, error)) from None
    problems = config_problems(
        datasets=config.datasets,
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
    return parse_config(data, source=str(path))
