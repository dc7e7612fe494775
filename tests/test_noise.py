"""Mixed noise exactly as the paper's protocol; label and feature noise are OpenDataVal's own."""

from __future__ import annotations

import numpy as np
import pytest

from lossval_odv.bench.noise import NOISE_FUNCTIONS, mixed_noise

from opendataval.dataloader import DataFetcher


def _fetcher(one_hot: bool, seed: int = 0) -> DataFetcher:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(700, 4))
    y = np.eye(3)[rng.integers(0, 3, 700)] if one_hot else rng.normal(size=700)
    fetcher = DataFetcher.from_data(x, y, one_hot=one_hot, random_state=np.random.RandomState(seed))
    return fetcher.split_dataset_by_count(400, 100, 200)


@pytest.mark.parametrize("one_hot", [True, False])
@pytest.mark.parametrize("rate", [0.1, 0.15])
def test_mixed_noise_splits_chosen_points_in_two_halves(one_hot, rate):
    clean = _fetcher(one_hot)
    x0, y0, xv0, yv0 = (
        np.array(a, dtype=float)
        for a in (clean.x_train, clean.y_train, clean.x_valid, clean.y_valid)
    )
    noisy = _fetcher(one_hot).noisify(mixed_noise, noise_rate=rate)
    chosen = np.asarray(noisy.noisy_train_indices)
    assert len(chosen) == round(400 * rate) == len(set(chosen))
    label_half, feature_half = chosen[: len(chosen) // 2], chosen[len(chosen) // 2 :]
    x1, y1 = np.asarray(noisy.x_train, dtype=float), np.asarray(noisy.y_train, dtype=float)
    changed_x = np.flatnonzero((x1 != x0).any(axis=1))
    changed_y = np.flatnonzero((y1 != y0).reshape(len(y0), -1).any(axis=1))
    assert sorted(changed_x) == sorted(feature_half)
    assert sorted(changed_y) == sorted(label_half)  # every chosen label moved class/value
    # the validation set is noised at the same rate, half each way
    xv1, yv1 = np.asarray(noisy.x_valid, dtype=float), np.asarray(noisy.y_valid, dtype=float)
    n_valid = round(100 * rate)
    assert (xv1 != xv0).any(axis=1).sum() == n_valid - n_valid // 2
    assert (yv1 != yv0).reshape(100, -1).any(axis=1).sum() == n_valid // 2


def test_mixed_noise_is_seeded():
    a = _fetcher(True, 3).noisify(mixed_noise, noise_rate=0.2)
    b = _fetcher(True, 3).noisify(mixed_noise, noise_rate=0.2)
    np.testing.assert_array_equal(a.noisy_train_indices, b.noisy_train_indices)
    np.testing.assert_array_equal(np.asarray(a.x_train), np.asarray(b.x_train))


def test_label_and_feature_noise_are_opendatavals():
    from opendataval.dataloader import add_gauss_noise, mix_labels

    assert NOISE_FUNCTIONS["label"] is mix_labels
    assert NOISE_FUNCTIONS["feature"] is add_gauss_noise
