"""Critical-difference diagrams (issue 14): Friedman + Nemenyi against a hand-computed
example and Demšar's (2006) table of q_alpha."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossval_odv.reporting.critical_difference import (
    CDResult,
    block_scores,
    cd_section,
    friedman_nemenyi,
    nemenyi_critical_difference,
)


@pytest.mark.parametrize("k, q_alpha", [(3, 2.343), (4, 2.569), (5, 2.728), (10, 3.164)])
def test_critical_difference_uses_demsars_q_alpha(k, q_alpha):
    blocks = 12
    expected = q_alpha * np.sqrt(k * (k + 1) / (6 * blocks))
    assert nemenyi_critical_difference(methods=k, blocks=blocks) == pytest.approx(
        expected, abs=1e-3
    )


def test_friedman_nemenyi_on_a_hand_computed_example():
    # ranks per block (1 = best): A 1 2 1 2, B 2 1 2.5 3, C 3 3 2.5 1
    scores = pd.DataFrame(
        {"A": [0.9, 0.8, 0.7, 0.6], "B": [0.5, 0.9, 0.4, 0.3], "C": [0.1, 0.2, 0.4, 0.9]}
    )
    result = friedman_nemenyi(scores)
    assert result.methods == ["A", "B", "C"]
    np.testing.assert_allclose(result.average_ranks, [1.5, 2.125, 2.375])
    # chi2 = 12 / (N k (k+1)) sum R_j^2 - 3 N (k+1) = 0.25 * 198.5 - 48 = 1.625, divided
    # by the tie correction 1 - sum(t^3 - t) / (N k (k^2 - 1)) = 1 - 6 / 96
    assert result.statistic == pytest.approx(1.625 / (1 - 6 / 96))
    assert result.p_value == pytest.approx(np.exp(-result.statistic / 2))  # chi2, 2 dof
    assert result.blocks == 4
    assert result.critical_difference == pytest.approx(2.343 * np.sqrt(0.5), abs=1e-3)
    assert result.cliques() == [(0, 2)]


def test_incomplete_blocks_are_dropped_and_too_few_methods_refused():
    scores = pd.DataFrame({"A": [1.0, 0.9, 0.8], "B": [0.5, np.nan, 0.4], "C": [0.1, 0.2, 0.3]})
    assert friedman_nemenyi(scores).blocks == 2
    with pytest.raises(ValueError, match="at least 3 methods"):
        friedman_nemenyi(scores[["A", "C"]])


def test_cliques_are_maximal_runs_within_the_critical_difference():
    def cliques(ranks, cd):
        return CDResult(["m"] * len(ranks), np.array(ranks), 10, 0.0, 1.0, cd).cliques()

    assert cliques([1.0, 1.5, 3.0, 3.2], 1.0) == [(0, 1), (2, 3)]
    assert cliques([1.0, 1.8, 2.6], 1.0) == [(0, 1), (1, 2)]
    assert cliques([1.0, 2.5, 4.0], 1.0) == []


def test_section_ranks_a_planted_best_method_first(tmp_path: Path):
    rng = np.random.default_rng(0)
    rows = []
    for dataset in ("a", "b", "c", "d", "e", "f"):
        for rate in (0.1, 0.2):
            for run in range(3):
                for method, level in (("best", 0.8), ("mid", 0.5), ("worst", 0.2), ("noise", 0.35)):
                    f1 = level + 0.05 * rng.normal()
                    rows.append(("classification", "label", dataset, rate, run, method, f1))
    ok = pd.DataFrame(rows, columns=["task", "noise", "dataset", "rate", "run", "method", "f1"])
    ok["curves"] = [{} for _ in range(len(ok))]  # no removal curves: no removal diagrams
    scores = block_scores(ok, "f1", ["best", "mid", "worst", "noise"])
    assert scores.shape == (12, 4)  # dataset x rate blocks, runs averaged
    figures, tables = tmp_path / "figures", tmp_path / "tables"
    text = cd_section(ok, ["best", "mid", "worst", "noise"], figures, tables, tmp_path)
    assert "figures/cd_f1_classification_label.png" in text
    assert (figures / "cd_f1_classification_label.png").stat().st_size > 0
    table = pd.read_csv(tables / "critical_difference.csv")
    assert table["method"].tolist() == ["best", "mid", "noise", "worst"]
    assert table["average_rank"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert (table["friedman_p"] < 1e-6).all()
    assert set(table["score"]) == {"detection_f1"}
    assert "figures/cd_removal" not in text
    assert "not tested: point-removal gap: no point-removal results" in text
    assert not list(figures.glob("cd_removal_*"))


AXIS = [0.0, 0.1, 0.2, 0.3]


def _removal_cells(rng: np.random.Generator) -> pd.DataFrame:
    """Cells of two noise types whose removal gaps at 20% are planted per method; F1 is
    planted in the opposite order, so a removal diagram ranking by F1 would fail."""
    levels = {"best": 0.3, "mid": 0.15, "worst": -0.1, "noise": 0.05}
    rows = []
    for noise in ("label", "feature"):
        for dataset in ("a", "b", "c", "d"):
            for rate in (0.1, 0.2):
                for run in range(2):
                    for method, gap in levels.items():
                        gap += 0.03 * rng.normal()
                        high = 0.7 - gap / 2 * np.array(AXIS) / 0.2
                        low = 0.7 + gap / 2 * np.array(AXIS) / 0.2
                        curve = {"axis": AXIS, "remove_low": list(low), "remove_high": list(high)}
                        curves = {"removal_paper": {**curve, "metric": "accuracy"}}
                        if method != "worst":  # one model without a method: 3 of 4 ranked
                            curves["removal_mlp"] = {**curve, "metric": "accuracy"}
                        f1 = 0.5 - gap
                        rows.append(("regression", noise, dataset, rate, run, method, f1, curves))
    columns = ["task", "noise", "dataset", "rate", "run", "method", "f1", "curves"]
    return pd.DataFrame(rows, columns=columns)


def test_section_ranks_a_planted_best_removal_gap_first_per_model(tmp_path: Path):
    ok = _removal_cells(np.random.default_rng(1))
    methods = ["best", "mid", "worst", "noise"]
    figures, tables = tmp_path / "figures", tmp_path / "tables"
    text = cd_section(ok, methods, figures, tables, tmp_path)
    for model in ("paper", "mlp"):
        assert f"figures/cd_removal_regression_{model}.png" in text
        assert (figures / f"cd_removal_regression_{model}.png").stat().st_size > 0
    table = pd.read_csv(tables / "critical_difference.csv", keep_default_na=False)
    assert set(table.columns) >= {"score", "task", "noise", "model", "method", "average_rank"}
    detection = table[table["score"] == "detection_f1"]
    assert set(detection["noise"]) == {"label", "feature"}
    assert (detection["model"] == "").all()
    assert detection.groupby("noise")["method"].first().eq("worst").all()  # F1 planted reversed
    removal = table[table["score"] == "removal_gap"]
    assert (removal["noise"] == "all").all()
    paper = removal[removal["model"] == "paper"]
    assert paper["method"].tolist() == ["best", "mid", "noise", "worst"]
    assert paper["average_rank"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert (paper["blocks"] == 16).all()  # dataset x noise type x rate, runs averaged
    mlp = removal[removal["model"] == "mlp"]
    assert mlp["method"].tolist() == ["best", "mid", "noise"]
    assert (mlp["friedman_p"] < 1e-6).all()
