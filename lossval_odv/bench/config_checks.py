"""Checks of a benchmark config that the schema alone cannot make, all before computing.

:mod:`lossval_odv.bench.config` checks each key on its own (types, ranges, known names). This
module checks what needs more context, so that a mistake is reported up front, naming the
key, instead of failing (or silently misleading) inside every cell:

- each method's ``params`` bound against its evaluator's constructor: unknown names,
  wrong types, obviously invalid values (a count below 1, a non-positive rate), devices;
- duplicate datasets, noise rates and methods (the same cell computed several times);
- duplicate keys in the YAML file (otherwise the last one wins silently);
- the split against each dataset's size (datasets that cannot be loaded here are left to
  the cells, which record why);
- that the output directory is writable.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

# set by the cell from its seed, never by the config
CELL_OWNED_PARAMS = ("random_state",)
SAMPLER_PARAM = "sampler"  # a mapping turned into an OpenDataVal sampler by the cell


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML safe loader that refuses a mapping with a repeated key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that raises ``yaml.YAMLError`` on a duplicate key."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)


def duplicates(items: Sequence[Any]) -> list[Any]:
    """Items that occur more than once, in order of first occurrence."""
    seen: set = set()
    repeated: list = []
    for item in items:
        if item in seen and item not in repeated:
            repeated.append(item)
        seen.add(item)
    return repeated


def device_problem(value: Any) -> str | None:
    """Why ``value`` is not a torch device name (``auto`` allowed), or None."""
    import torch

    if isinstance(value, torch.device) or value == "auto":
        return None
    if not isinstance(value, str):
        return f"device must be a string such as cpu, cuda, cuda:0 or auto, got {value!r}"
    try:
        torch.device(value)
    except RuntimeError:
        return f"{value!r} is not a device; use cpu, cuda, cuda:N, mps or auto"
    return None


def _allowed(annotation: Any) -> tuple[tuple[type, ...], tuple[Any, ...]] | None:
    """(types, literal values) an annotation admits, or None when it cannot be checked."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return (), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds: tuple[type, ...] = ()
        literals: tuple[Any, ...] = ()
        for arg in typing.get_args(annotation):
            part = _allowed(arg)
            if part is None:
                return None
            kinds, literals = kinds + part[0], literals + part[1]
        return kinds, literals
    if annotation is type(None):
        return (type(None),), ()
    if annotation in (int, float, bool, str):
        return (annotation,), ()
    return None


def _type_matches(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, never to a config
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable forward references: fall back to the defaults' types
        return {}


def param_problems(evaluator: str, params: dict[str, Any]) -> list[str]:
    """What is wrong with ``params`` for the registered ``evaluator`` (empty when fine).

    Names are bound against the constructor's signature (unless it takes ``**kwargs``).
    A value must have the annotated type (an int where a float is expected is fine), or
    the default's type when there is no usable annotation; a parameter whose default is a
    positive number must stay positive (``k_neighbors``, ``epochs``, ``lr``, ...), and a
    ``device`` must name a device.
    """
    from opendataval.dataval import DataEvaluator

    cls = DataEvaluator.Evaluators[evaluator]
    signature = inspect.signature(cls)
    parameters = signature.parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    hints = _type_hints(cls)
    problems = []
    for name, value in params.items():
        if name in CELL_OWNED_PARAMS:
            problems.append(f"{name}: set by the benchmark from the cell's seed; remove it")
            continue
        parameter = parameters.get(name)
        if parameter is None or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            if not takes_any:
                known = [n for n in parameters if n not in CELL_OWNED_PARAMS]
                problems.append(
                    f"{name}: unknown parameter of {evaluator}; it takes: "
                    + (", ".join(known) or "no parameters")
                )
            continue
        if name == "device":
            problem = device_problem(value)
            if problem:
                problems.append(f"device: {problem}")
            continue
        if name == SAMPLER_PARAM and isinstance(value, dict):
            continue  # checked where the sampler is built
        problems += _value_problems(name, value, hints.get(name), parameter.default)
    return problems


def _value_problems(name: str, value: Any, annotation: Any, default: Any) -> list[str]:
    allowed = _allowed(annotation) if annotation is not None else None
    if allowed is None and default is not inspect.Parameter.empty and default is not None:
        allowed = _allowed(type(default))
    if allowed is not None:
        kinds, literals = allowed
        if isinstance(default, float) and int in kinds:  # annotated int, default float
            kinds += (float,)
        if value not in literals and not _type_matches(value, kinds):
            expected = [k.__name__ for k in kinds] + [repr(v) for v in literals]
            return [f"{name}: expected {' or '.join(expected)}, got {value!r}"]
    positive_default = (
        isinstance(default, int | float) and not isinstance(default, bool) and default > 0
    )
    if positive_default and isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(default, int) and value < 1:
            return [f"{name}: must be at least 1, got {value!r}"]
        if value <= 0:
            return [f"{name}: must be positive, got {value!r}"]
    return []


def config_problems(
    *, datasets: Sequence[str], noise_rates: Sequence[float], methods: Sequence, device: str
) -> list[str]:
    """Every problem of a schema-valid config that needs no data, as ``key: message``.

    ``methods`` are the config's method entries (``name``, ``evaluator``, ``params``,
    ``metric``, ``training``).
    """
    problems = []
    for key, values in (("datasets", datasets), ("noise_rates", noise_rates)):
        repeated = duplicates(values)
        if repeated:
            problems.append(f"{key}: listed more than once: {repeated}")
    settings = [
        (m.evaluator, sorted(m.params.items(), key=str), m.metric, m.training) for m in methods
    ]
    for index, method in enumerate(methods):
        first = settings.index(settings[index])
        if first != index:
            problems.append(
                f"methods.{index}: {method.name!r} repeats methods.{first} "
                f"({methods[first].name!r}): same evaluator, params, metric and train"
            )
        for problem in param_problems(method.evaluator, method.params):
            problems.append(f"methods.{index}.params.{problem}")
    problem = device_problem(device)
    if problem:
        problems.append(f"device: {problem}")
    return problems


def dataset_size(name: str, data_dir: str | None) -> int | None:
    """Number of points of a registered dataset, or None when it cannot be loaded here."""
    from lossval_odv.datasets import DATASETS, load_dataset
    from lossval_odv.datasets.errors import DatasetError

    from opendataval.dataloader import Register

    if name in DATASETS:  # ours: the loader honours the config's data_dir
        try:
            return len(load_dataset(name, data_dir=data_dir)[0])
        except DatasetError:
            return None  # the cells record why (and the next run retries them)
    try:
        return len(Register.Datasets[name].load_data()[0])
    except Exception:  # a plugin's or upstream's loader: its cells will say why
        return None


def split_problems(
    *, datasets: Sequence[str], split: tuple[int, int, int], data_dir: str | None
) -> list[str]:
    """Datasets too small for the split (train, valid, test points)."""
    train, valid, test = split
    problems = []
    for name in dict.fromkeys(datasets):
        size = dataset_size(name, data_dir)
        if size is not None and size < train + valid + test:
            problems.append(
                f"split: train {train} + valid {valid} + test {test} = "
                f"{train + valid + test} points, but dataset {name!r} has {size}"
            )
    return problems


def output_dir_problem(path: Path) -> str | None:
    """Why the output directory cannot hold the store and report, or None."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        return f"output directory {path} is not writable: {error.strerror or error}"
    return None
