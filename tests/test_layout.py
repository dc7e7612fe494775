"""The package's layout: the core imports alone, the plugin contract, no import cycles."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lossval_odv.evaluators import ADAPTERS, KEYS

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "lossval_odv"


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (repository first on the path); it prints JSON."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        # the repository first, then wherever this interpreter's own packages were put
        env={
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_core_imports_without_opendataval_the_benchmark_or_side_effects():
    loaded = _fresh(
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import lossval_odv.core, lossval_odv.core.tracin, lossval_odv.core.loss_trajectory\n"
        "import lossval_odv.core.cleanlab_quality\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    forbidden = ("opendataval", "torchvision", "transformers", "cleanlab", "ray")
    ours = ("lossval_odv.bench", "lossval_odv.reporting", "lossval_odv.evaluators")
    ours += ("lossval_odv.datasets", "lossval_odv.plugins")
    assert not [m for m in loaded if m.split(".")[0] in forbidden], loaded
    assert not [m for m in loaded if m.startswith(ours)], loaded
    assert "geomloss.utils" not in loaded  # compat.install() did not run


def test_plugin_contract_import_lossval_odv_then_opendataval():
    got = _fresh(
        "import json\n"
        "import lossval_odv\n"
        "from opendataval.dataloader import Register\n"
        "from opendataval.dataval import DataEvaluator\n"
        "from lossval_odv.datasets import DATASETS\n"
        "print(json.dumps({\n"
        "    'evaluators': sorted(DataEvaluator.Evaluators),\n"
        "    'ours': [getattr(Register.Datasets[n], '_lossval_odv', False) for n in DATASETS],\n"
        "}))\n"
    )
    assert {"lossvalodv", "tracin", "losstrajectory", "cleanlabquality"} <= set(got["evaluators"])
    assert got["ours"] and all(got["ours"])


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(set(ADAPTERS.values())))
def test_any_adapter_can_be_imported_first(module: str):
    # The first `import opendataval` registers every adapter, also when an adapter's own
    # import triggers it: the adapters must not import each other's half-made modules.
    got = _fresh(
        "import json\n"
        f"import {module}\n"
        "from opendataval.dataval import DataEvaluator\n"
        "print(json.dumps(sorted(DataEvaluator.Evaluators)))\n"
    )
    assert set(KEYS.values()) <= set(got)


def _imports(path: Path) -> set[str]:
    """Modules of this package that ``path`` imports (anywhere in the file)."""
    module = _module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert not node.level, f"{module}: relative import of {node.module}"
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("lossval_odv")}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def _module_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _imports(path) if m in files} - {name} for name, path in files.items()
    }


def test_no_import_cycles_between_modules():
    graph = _module_graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if dep.startswith(node + "."):  # a package's __init__ re-exporting its modules
                continue
            if state.get(dep) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*path, node, dep])}")
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_no_private_names_imported_across_packages():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        package = ".".join(path.relative_to(REPO).parent.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "lossval_odv"
            ):
                continue
            source_package = node.module.rsplit(".", 1)[0] if node.module else ""
            for alias in node.names:
                private = alias.name.startswith("_") or any(
                    part.startswith("_") and part != "__init__" for part in node.module.split(".")
                )
                if private and source_package != package and node.module != package:
                    offenders.append(f"{path.relative_to(REPO)}: {node.module}.{alias.name}")
    assert not offenders, offenders


def test_experiments_registry_matches_the_config_switches():
    from lossval_odv.bench.config import ExperimentsConfig
    from lossval_odv.bench.experiments import EXPERIMENTS

    assert list(EXPERIMENTS) == ["detection", "discovery", "removal"]  # the order they run in
    assert set(EXPERIMENTS) <= set(ExperimentsConfig.model_fields)


def test_capabilities_are_declared_by_the_evaluators():
    from lossval_odv.evaluators import KEYS
    from lossval_odv.evaluators.capabilities import Capabilities, capabilities_of

    lossval = capabilities_of(KEYS["LossValODV"])
    assert lossval.trains_together and lossval.gpu_share == 0.25
    assert lossval.device_argument == "str"
    assert capabilities_of(KEYS["TracIn"]) == Capabilities()
    assert capabilities_of("knnshapley") == Capabilities()
    assert capabilities_of("lavaevaluator").device_argument == "torch.device"
