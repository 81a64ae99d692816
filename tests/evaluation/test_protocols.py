"""SYSU-MM01 and RegDB protocols, checked against the dataset's real protocol files."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED_DATA
from rgbir_reid.data.records import DatasetFormatError
from rgbir_reid.evaluation.protocols import (
    EvaluationSettings,
    evaluate_features,
    evaluate_regdb,
    evaluate_sysu_mm01,
    folder_positions,
    load_rand_perm_cam,
    load_sysu_id_list,
    sysu_gallery_indices,
    sysu_query_indices,
)

PROTOCOL_DIR = SHARED_DATA / "sysu_mm01_protocol" / "evaluation"
SAMPLE_DIR = SHARED_DATA / "sysu_mm01_sample"


@pytest.fixture(scope="module")
def official():
    """The real test set as a (camera, pid, folder position) table built from rand_perm_cam.mat."""
    rand_perm = load_rand_perm_cam(PROTOCOL_DIR / "rand_perm_cam.mat")
    test_ids = set(load_sysu_id_list(PROTOCOL_DIR / "test_id.mat").tolist())
    cams, pids, pos = [], [], []
    for (cam, pid), perm in sorted(rand_perm.items()):
        if pid in test_ids:
            n = perm.shape[1]
            cams += [cam] * n
            pids += [pid] * n
            pos += list(range(n))
    return rand_perm, np.array(cams), np.array(pids), np.array(pos)


def test_id_files():
    test_ids = load_sysu_id_list(PROTOCOL_DIR / "test_id.mat")
    indoor = load_sysu_id_list(PROTOCOL_DIR / "test_id_indoor.mat")
    assert len(test_ids) == 96 and len(indoor) == 56
    assert set(indoor) <= set(test_ids)


def test_real_test_set_sizes(official):
    rand_perm, cams, pids, pos = official
    assert len(sysu_query_indices(cams, pids)) == 3803
    expected = {"all-search/single-shot": 301, "all-search/multi-shot": 3010, "indoor-search/single-shot": 112}
    for mode, size in expected.items():
        for trial in (0, 9):
            g = sysu_gallery_indices(cams, pids, pos, mode=mode, trial=trial, sampler="official", rand_perm=rand_perm)
            assert len(g) == size, (mode, trial)
            assert set(cams[g]) <= ({1, 2} if mode.startswith("indoor") else {1, 2, 4, 5})
    # The 56-id indoor list is exactly the test ids seen by RGB cameras 1 and 2.
    indoor = load_sysu_id_list(PROTOCOL_DIR / "test_id_indoor.mat")
    assert set(pids[np.isin(cams, (1, 2))]) == set(indoor.tolist())


def test_official_sampler_takes_row_t_of_rand_perm(official):
    rand_perm, cams, pids, pos = official
    for trial in (0, 3):
        g = sysu_gallery_indices(cams, pids, pos, mode="all-search/single-shot", trial=trial, sampler="official", rand_perm=rand_perm)
        for row in g[:20]:
            cam, pid = int(cams[row]), int(pids[row])
            assert pos[row] == rand_perm[(cam, pid)][trial, 0]  # 1-based file index minus one
        g10 = sysu_gallery_indices(cams, pids, pos, mode="all-search/multi-shot", trial=trial, sampler="official", rand_perm=rand_perm)
        first = g10[(cams[g10] == cams[g[0]]) & (pids[g10] == pids[g[0]])]
        assert sorted(pos[first]) == sorted(rand_perm[(int(cams[g[0]]), int(pids[g[0]]))][trial, :10])


def test_seeded_sampler_is_reproducible(official):
    _, cams, pids, pos = official
    a = sysu_gallery_indices(cams, pids, pos, mode="all-search/single-shot", trial=2, sampler="seeded")
    b = sysu_gallery_indices(cams, pids, pos, mode="all-search/single-shot", trial=2, sampler="seeded")
    c = sysu_gallery_indices(cams, pids, pos, mode="all-search/single-shot", trial=3, sampler="seeded")
    np.testing.assert_array_equal(a, b)
    assert len(a) == len(c) == 301 and not np.array_equal(a, c)


def test_official_sampler_rejects_a_different_file_list(official):
    rand_perm, cams, pids, pos = official
    keep = ~((cams == 1) & (pids == pids[cams == 1][0]) & (pos == 0))  # one image missing
    with pytest.raises(DatasetFormatError, match="rand_perm_cam indexes"):
        sysu_gallery_indices(cams[keep], pids[keep], pos[keep], mode="all-search/single-shot", trial=0, sampler="official", rand_perm=rand_perm)
    with pytest.raises(ValueError, match="needs rand_perm"):
        sysu_gallery_indices(cams, pids, pos, mode="all-search/single-shot", trial=0, sampler="official")
    with pytest.raises(ValueError, match="unknown SYSU-MM01 mode"):
        sysu_gallery_indices(cams, pids, pos, mode="all/one", trial=0, sampler="seeded")


def test_indoor_id_list_gives_the_same_numbers(official):
    rand_perm, cams, pids, pos = official
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(pids.max() + 1, 16))
    feats = centres[pids] + 1.5 * rng.normal(size=(len(pids), 16))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    paths = [f"/data/cam{c}/{p:04d}/{i + 1:04d}.jpg" for c, p, i in zip(cams, pids, pos)]
    kwargs = dict(modes=["indoor-search/single-shot"], sampler="official", n_trials=2, rand_perm_file=PROTOCOL_DIR / "rand_perm_cam.mat")
    all_ids = evaluate_sysu_mm01(feats, pids, cams, paths, **kwargs)
    indoor = evaluate_sysu_mm01(feats, pids, cams, paths, indoor_ids=load_sysu_id_list(PROTOCOL_DIR / "test_id_indoor.mat"), **kwargs)
    for a, b in zip(all_ids, indoor):
        assert a["protocol"] == "sysu_mm01 indoor-search single-shot official"
        assert b["protocol"] == "sysu_mm01 indoor-search single-shot official indoor-ids"
        assert (a["n_query"], a["n_valid_query"], b["n_query"], a["n_gallery"]) == (3803, 2208, 2208, 112)
        assert a["rank1"] == b["rank1"] and a["mAP"] == b["mAP"] and a["mINP"] == b["mINP"]
        assert a["chance_rank1"] == b["chance_rank1"] and a["chance_mAP"] == b["chance_mAP"]


def test_folder_positions_follow_sorted_paths():
    paths = ["/r/cam1/0001/0003.jpg", "/r/cam1/0001/0001.jpg", "/r/cam3/0001/0002.jpg", "/r/cam1/0001/0002.jpg"]
    np.testing.assert_array_equal(folder_positions([1, 1, 3, 1], [1, 1, 1, 1], paths), [2, 0, 0, 1])
    with pytest.raises(ValueError, match="not unique"):
        folder_positions([1, 1], [1, 1], ["/a.jpg", "/a.jpg"])


def test_sysu_on_real_sample_layout():
    """The real sample folder (test ids 4, 5): seeded sampler, every mode, hand-checkable sizes."""
    files = sorted(p for p in SAMPLE_DIR.glob("cam*/000[45]/*.jpg"))
    cams = np.array([int(p.parts[-3][3:]) for p in files])
    pids = np.array([int(p.parts[-2]) for p in files])
    # Features that identify people perfectly: one-hot on the identity.
    feats = np.eye(8)[pids].astype(np.float32)
    rows = evaluate_sysu_mm01(feats, pids, cams, [str(p) for p in files], sampler="seeded", n_trials=2)
    assert len(rows) == 4 * 2
    by_mode = {r["mode"]: r for r in rows if r["gallery_trial"] == 0}
    assert by_mode["all-search/single-shot"]["n_query"] == 8  # 2 ids x cameras 3, 6 x 2 images
    assert by_mode["all-search/single-shot"]["n_gallery"] == 8  # 2 ids x 4 RGB cameras x 1
    assert by_mode["all-search/multi-shot"]["n_gallery"] == 16  # only 2 images per folder
    assert by_mode["indoor-search/single-shot"]["n_gallery"] == 4
    for row in rows:
        assert row["rank1"] == 1.0 and row["mAP"] == 1.0 and row["mINP"] == 1.0
        assert len(row["cmc"]) == 20 and row["dataset_format"] == "sysu_mm01"
    # Chance: camera-6 queries see m of n, camera-3 queries lose camera 2 (one image per id here).
    def ap(m, n):
        h = sum(1 / k for k in range(1, n + 1))
        return (h + (m - 1) / (n - 1) * (n - h)) / n

    single = by_mode["all-search/single-shot"]  # camera 6: m = 4 of n = 8; camera 3: 3 of 6
    assert single["chance_rank1"] == pytest.approx(0.5)
    assert single["chance_mAP"] == pytest.approx((ap(4, 8) + ap(3, 6)) / 2)
    indoor = by_mode["indoor-search/single-shot"]  # camera 6: 2 of 4; camera 3: 1 of 2
    assert indoor["chance_rank1"] == pytest.approx(0.5)
    assert indoor["chance_mAP"] == pytest.approx((ap(2, 4) + 0.75) / 2)
    with pytest.raises(ValueError, match="needs rand_perm_file"):
        evaluate_sysu_mm01(feats, pids, cams, [str(p) for p in files], sampler="official")


def test_regdb_directions_hand_computed():
    # Two identities; visible images 0, 1 and thermal images 2, 3 (features on a line).
    feats = np.array([[0.0], [1.0], [0.1], [0.4]])
    pids = np.array([1, 2, 1, 2])
    mods = np.array([0, 0, 1, 1])
    vt, tv = evaluate_regdb(feats, pids, mods)
    assert vt["protocol"] == "regdb visible->thermal" and tv["protocol"] == "regdb thermal->visible"
    # V->T: query 0 (pid 1) nearest is 0.1 (pid 1): rank 1. Query 1 (pid 2) nearest 0.4 (pid 2): rank 1.
    assert vt["rank1"] == 1.0 and vt["mAP"] == 1.0
    # T->V: query 0.1 (pid 1) -> 0.0 first: rank 1. Query 0.4 (pid 2) -> 0.0 (pid 1) at 0.4 before 1.0 at 0.6: rank 2.
    assert tv["rank1"] == 0.5 and tv["mAP"] == pytest.approx((1 + 0.5) / 2)
    assert tv["cmc"][1] == 1.0 and tv["n_query"] == 2 and tv["n_gallery"] == 2
    # Chance: one true match among two gallery images per query.
    for row in (vt, tv):
        assert (row["chance_rank1"], row["chance_mAP"], row["chance_mINP"]) == (0.5, 0.75, 0.75)


def test_evaluate_features_dispatch():
    feats = np.array([[0.0], [1.0], [0.1], [0.4]])
    rows = evaluate_features(feats, [1, 2, 1, 2], [1, 1, 2, 2], [0, 0, 1, 1], ["a", "b", "c", "d"], dataset_format="regdb",
                             settings=EvaluationSettings(regdb_directions=("visible->thermal",)))
    assert [r["mode"] for r in rows] == ["visible->thermal"]
    with pytest.raises(ValueError, match="unknown dataset_format"):
        evaluate_features(feats, [1, 2, 1, 2], [1, 1, 2, 2], [0, 0, 1, 1], ["a", "b", "c", "d"], dataset_format="market1501")
    feats[2, 0] = np.nan  # one broken feature is named, whatever protocol would or would not read it
    with pytest.raises(ValueError, match=r"1 feature vector\(s\) hold NaN or infinite values \(e.g. c\)"):
        evaluate_features(feats, [1, 2, 1, 2], [1, 1, 2, 2], [0, 0, 1, 1], ["a", "b", "c", "d"], dataset_format="regdb")


def test_nearest_neighbour_rank1_skips_same_camera_images():
    from rgbir_reid.evaluation.protocols import nearest_neighbour_rank1

    # Query 0 (pid 1, camera 1): nearest overall is row 1 (pid 2, same camera, must be skipped),
    # then row 2 (pid 1, camera 2): a hit. Query 3 (pid 2, camera 2): nearest of another camera
    # is row 4 (pid 1): a miss. Query 5's only gallery row shares its camera: a miss.
    features = np.array([[0.0], [0.1], [0.3], [1.0], [1.1], [5.0]])
    pid = np.array([1, 2, 1, 2, 1, 3])
    camera = np.array([1, 1, 2, 2, 3, 4])
    assert nearest_neighbour_rank1(features, pid, camera, [0], [1, 2, 4]) == 1.0
    assert nearest_neighbour_rank1(features, pid, camera, [3], [2, 4]) == 0.0
    assert nearest_neighbour_rank1(features, pid, camera, [5], [5]) == 0.0
    assert nearest_neighbour_rank1(features, pid, camera, [0, 3], [1, 2, 4]) == 0.5


def test_rerank_adds_a_labelled_row_beside_each_plain_one():
    from rgbir_reid.evaluation.metrics import rank_metrics
    from rgbir_reid.evaluation.protocols import euclidean_distances
    from rgbir_reid.evaluation.rerank import RerankSettings, rerank_distances

    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(6), 4)  # 6 identities x (2 visible + 2 thermal)
    mods = np.tile([0, 0, 1, 1], 6)
    feats = np.eye(6)[pids] + rng.normal(scale=0.6, size=(24, 6))
    settings = RerankSettings(k1=4, k2=2, lam=0.3)
    plain = evaluate_regdb(feats, pids, mods)
    both = evaluate_regdb(feats, pids, mods, rerank=settings)
    assert [r["rerank"] for r in both] == [False, True, False, True]
    assert [r for r in both if not r["rerank"]] == plain
    q, g = np.flatnonzero(mods == 0), np.flatnonzero(mods == 1)
    d = rerank_distances(euclidean_distances(feats[q], feats[g]), euclidean_distances(feats[q], feats[q]),
                         euclidean_distances(feats[g], feats[g]), settings)
    expected = rank_metrics(d, pids[q], pids[g], np.zeros(len(q)), np.ones(len(g)), protocol="regdb")
    assert both[1]["mAP"] == expected.mAP and both[1]["cmc"] == expected.cmc.tolist()
    assert both[1]["chance_mAP"] == both[0]["chance_mAP"]  # the same gallery


def test_sysu_rerank_rows_through_the_settings():
    from rgbir_reid.evaluation.rerank import RerankSettings

    files = sorted(p for p in SAMPLE_DIR.glob("cam*/000[45]/*.jpg"))
    cams = np.array([int(p.parts[-3][3:]) for p in files])
    pids = np.array([int(p.parts[-2]) for p in files])
    feats = np.eye(8)[pids].astype(np.float32)
    settings = EvaluationSettings(sysu_modes=("all-search/single-shot",), sysu_sampler="seeded", sysu_n_trials=2,
                                  rerank=RerankSettings(k1=3, k2=1))
    rows = evaluate_features(feats, pids, cams, np.zeros(len(pids)), [str(p) for p in files], dataset_format="sysu_mm01", settings=settings)
    assert [(r["gallery_trial"], r["rerank"]) for r in rows] == [(0, False), (0, True), (1, False), (1, True)]
    assert all(r["rank1"] == 1.0 for r in rows)  # identities told apart perfectly either way
