"""The ``lossval-odv`` command: help, version, datasets and methods listings, run's
``--data-dir``, the unknown-dataset message and a missing OpenDataVal (issue 15, item 4)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import lossval_odv
from lossval_odv import cli
from lossval_odv.datasets import sources
from lossval_odv.plugins import ENV_VAR as ENV_PLUGINS
from tests.test_trust import BASE

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, *, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_environment_variables_named_in_the_help_are_the_ones_read() -> None:
    assert (cli.ENV_DATA_DIR, cli.ENV_OFFLINE) == (sources.ENV_DATA_DIR, sources.ENV_OFFLINE)


def test_help_loads_neither_torch_nor_opendataval_nor_the_schema() -> None:
    code = (
        "import sys\nfrom lossval_odv.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'opendataval', 'pydantic', 'pandas') "
        "if m in sys.modules))"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_top_level_help_names_the_commands_and_environment_without_rst(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text
    for word in ("run", "report", "collect", "datasets", "methods", "prefetch"):
        assert re.search(rf"^\s+{word}\s", text, re.MULTILINE), word
    assert sources.ENV_DATA_DIR in text and ENV_PLUGINS in text


def test_every_argument_of_every_command_has_a_help_text() -> None:
    parser = cli._parser()
    subparsers = next(a for a in parser._actions if a.choices and "run" in a.choices)
    for name, command in subparsers.choices.items():
        if name == "prefetch":  # its own parser (lossval_odv.datasets.prefetch) answers
            continue
        for action in command._actions:
            assert action.help, f"{name} {action.dest}"


def test_run_help_says_which_data_directory_wins(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--data-dir DIR" in text
    assert "wins over the config's data_dir, which wins over $LOSSVAL_ODV_DATA" in text
    assert ENV_PLUGINS in text


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"lossval-odv {lossval_odv.__version__}"


def test_datasets_lists_the_papers_twelve_and_plugins_with_where_they_load(
    tmp_path: Path, monkeypatch, capsys, shared_datasets: Path
) -> None:
    import tests.tiny_datasets  # noqa: F401  (a plugin's dataset)

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "kin8nm.csv.gz").write_bytes((shared_datasets / "kin8nm.csv.gz").read_bytes())
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "empty_cache"))
    monkeypatch.delenv(sources.ENV_DATA_DIR, raising=False)
    assert cli.main(["datasets", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line}
    assert re.match(r"kin8nm\s+regression\s+8192 x 8\s+\S*kin8nm\.csv\.gz$", rows["kin8nm"])
    assert re.match(r"pol\s+classification\s+15000 x 48\s+no \(OpenML 722\)$", rows["pol"])
    assert "plugin" in rows["tiny_clf"] and "classification" in rows["tiny_clf"]
    assert "cifar10" not in rows and "imdb" not in rows  # OpenDataVal's image and text sets
    hint = " ".join(out.split("Not here:")[1].split())
    assert "prefetch --data-dir DIR --names 2dplanes electricity MiniBooNE pol" in hint
    assert "kin8nm" not in hint


def test_datasets_refuses_a_tampered_file_as_a_source(
    tmp_path: Path, monkeypatch, capsys, shared_datasets: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "kin8nm.csv.gz").write_bytes(b"not the file")
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "empty_cache"))
    assert cli.main(["datasets", "--data-dir", str(data_dir)]) == 0
    assert re.search(r"^kin8nm .* no \(OpenML 44980\)$", capsys.readouterr().out, re.MULTILINE)


def test_methods_lists_keys_with_parameters_and_origin(capsys) -> None:
    assert cli.main(["methods"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert re.match(
        r"lossvalodv\s+lossval-odv\s+epochs=5, lr=0\.01, batch_size=32", rows["lossvalodv"]
    )
    assert re.match(r"knnshapley\s+OpenDataVal\s+k_neighbors=10", rows["knnshapley"])
    assert re.match(
        r"fastdataoob\s+lossval-odv, fast DataOob\s+num_models=1000", rows["fastdataoob"]
    )
    assert "random_state" not in rows["lossvalodv"]  # set by the benchmark


def test_run_data_dir_wins_over_the_configs(tmp_path: Path, monkeypatch) -> None:
    from lossval_odv.bench import runner

    seen = {}

    def fake_run(config, **kwargs):
        seen["data_dir"] = config.data_dir
        raise runner.ConfigError("stop here")

    monkeypatch.setattr(runner, "run_benchmark", fake_run)
    path = _write(tmp_path, {**BASE, "data_dir": str(tmp_path / "from_config")})
    assert cli.main(["run", str(path), "--data-dir", str(tmp_path / "from_cli")]) == 2
    assert seen["data_dir"] == str(tmp_path / "from_cli")
    assert cli.main(["run", str(path)]) == 2
    assert seen["data_dir"] == str(tmp_path / "from_config")


def test_unknown_dataset_lists_what_the_benchmark_runs(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, {**BASE, "datasets": ["pols"]})
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset(s) ['pols']" in err
    assert "pol, fried" in err and "tiny_clf" in err  # the paper's and the plugin's
    assert "cifar10" not in err and "imdb" not in err and "iris" not in err


def test_missing_opendataval_is_a_message_and_exit_2_not_a_traceback(tmp_path: Path) -> None:
    # An OpenDataVal 1.2.0 ahead of the real one on the path, as pip would install it.
    (tmp_path / "opendataval").mkdir()
    (tmp_path / "opendataval" / "__init__.py").write_text("raise RuntimeError('loaded')\n")
    dist_info = tmp_path / "opendataval-1.2.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: opendataval\nVersion: 1.2.0\n"
    )
    path = os.pathsep.join(filter(None, [str(tmp_path), str(REPO), os.environ.get("PYTHONPATH")]))
    code = "import sys\nfrom lossval_odv.cli import main\nsys.exit(main(sys.argv[1:]))"
    for command in (["methods"], ["run", "configs/quick.yaml"]):
        result = subprocess.run(
            [sys.executable, "-c", code, *command],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 2, command
        assert "Traceback" not in result.stderr
        assert "found: 1.2.0" in result.stderr
        assert "pip install --no-deps opendataval==1.3.0" in result.stderr
