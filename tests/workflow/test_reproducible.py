"""Same seed, same bytes: two uninterrupted demo runs with the same seed on CPU give identical
splits, caches, models, features, metrics and report (:func:`demo_runs.differences`: bytes where
the format allows, values for torch and HDF5 files)."""

from __future__ import annotations

import pytest

from demo_runs import differences, finished_run, temporary_leftovers

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    return finished_run(tmp_path_factory, "reference"), finished_run(tmp_path_factory, "second")


def test_same_seed_gives_identical_results(two_runs):
    ref, second = two_runs
    diffs = differences(ref, second)  # model_sha256 included: model files are byte-identical too
    assert not diffs, diffs
    for rel in ["demo/splits/trial1.csv", "demo/trial1/cache.h5", "demo/trial1/ce2l/features.h5",
                "demo/trial1/ce2l/metrics.json", "report/table.csv"]:
        assert (ref / "results" / rel).is_file(), rel  # compared above, not merely absent in both
    assert not temporary_leftovers(ref) and not temporary_leftovers(second)


def test_generator_file_is_byte_identical(two_runs):
    ref, second = two_runs
    for rel in ["demo/trial1/cyclegan/generator.pt"]:  # cache.h5 holds each run's absolute image paths
        assert (ref / "results" / rel).read_bytes() == (second / "results" / rel).read_bytes(), rel


def test_model_file_is_byte_identical(two_runs):
    ref, second = two_runs
    rel = "demo/trial1/ce2l/model.pt"
    assert (ref / "results" / rel).read_bytes() == (second / "results" / rel).read_bytes()
