"""Ranked-list figures: hand-made rankings, the SYSU-MM01 camera rule, the seeded query choice, the figure and its command line."""

from __future__ import annotations

import h5py
import matplotlib.image as mpimg
import numpy as np
import pytest
from PIL import Image

from rgbir_reid.reporting.ranked_lists import (
    GREEN,
    RED,
    figure_name,
    main,
    protocol_modes,
    query_and_gallery,
    rank_queries,
)

# Features on a line. Queries: rows 0 (pid 1, camera 3) and 1 (pid 2, camera 6); gallery rows
# 2..5: pid 1 cam 2 at 0.1, pid 2 cam 1 at 0.3, pid 1 cam 1 at 0.6, pid 3 cam 4 at 0.2.
FEATURES = np.array([[0.0], [1.0], [0.1], [0.3], [0.6], [0.2]])
PID = np.array([1, 2, 1, 2, 1, 3])
CAMERA = np.array([3, 6, 2, 1, 1, 4])


def test_ranking_by_hand_with_the_camera_rule():
    ranked = rank_queries(FEATURES, PID, CAMERA, [0, 1], [2, 3, 4, 5], protocol="sysu_mm01", positions=[0, 1], top_k=10)
    # Query 0 (camera 3) never sees camera 2 (row 2): 0.2 (row 5), 0.3 (row 3), 0.6 (row 4).
    # Query 1 at 1.0: 0.6 (row 4), 0.3 (row 3), 0.2 (row 5), 0.1 (row 2); cut to the shorter list.
    assert ranked.gallery.tolist() == [[5, 3, 4], [4, 3, 5]]
    assert ranked.match.tolist() == [[False, False, True], [False, True, False]]
    np.testing.assert_allclose(ranked.distance, [[0.2, 0.3, 0.6], [0.4, 0.7, 0.8]], rtol=1e-6)
    # RegDB has no camera rule: row 2 comes first for query 0.
    regdb = rank_queries(FEATURES, PID, CAMERA, [0], [2, 3, 4, 5], protocol="regdb", positions=[0], top_k=2)
    assert regdb.gallery.tolist() == [[2, 5]] and regdb.match.tolist() == [[True, False]]


def test_seeded_choice_takes_queries_with_a_match_and_repeats():
    pid = np.array([1, 9, 2, 7, 1, 2])  # queries 0..3 (pids 1, 9, 2, 7); gallery 4, 5 (pids 1, 2)
    camera = np.array([6, 6, 6, 6, 1, 1])
    feats = np.arange(6.0)[:, None]
    a = rank_queries(feats, pid, camera, [0, 1, 2, 3], [4, 5], protocol="sysu_mm01", n_queries=4, seed=0)
    b = rank_queries(feats, pid, camera, [0, 1, 2, 3], [4, 5], protocol="sysu_mm01", n_queries=4, seed=0)
    assert a.position.tolist() == b.position.tolist() == [0, 2]  # pids 9 and 7 have no true match
    with pytest.raises(ValueError, match=r"query positions \[4\] out of range: this mode has 4 queries"):
        rank_queries(feats, pid, camera, [0, 1, 2, 3], [4, 5], protocol="sysu_mm01", positions=[1, 4])


def test_figure_names_and_modes_follow_the_config():
    assert figure_name("demo", "ce2l", "all-search/single-shot") == "demo_ce2l_all-search_single-shot.png"
    assert figure_name("regdb", "bdtr", "visible->thermal") == "regdb_bdtr_visible-to-thermal.png"
    evaluation = {"sysu_mm01_modes": ["indoor-search/multi-shot"], "regdb_directions": ["thermal->visible"]}
    assert protocol_modes("demo", evaluation) == ["indoor-search/multi-shot"]
    assert protocol_modes("regdb", evaluation) == ["thermal->visible"]
    with pytest.raises(ValueError, match="unknown dataset format 'market'"):
        protocol_modes("market", evaluation)


def test_regdb_query_and_gallery_by_direction():
    modality = np.array([0, 1, 0, 1])
    q, g = query_and_gallery(np.array([1, 1, 2, 2]), np.zeros(4), modality, ["a", "b", "c", "d"],
                             protocol="regdb", mode="thermal->visible")
    assert q.tolist() == [1, 3] and g.tolist() == [0, 2]


@pytest.fixture(scope="module")
def features_file(tmp_path_factory):
    """A RegDB-like features.h5 of 6 identities x (2 visible + 2 thermal) images of flat colours."""
    root = tmp_path_factory.mktemp("ranked")
    pid = np.repeat(np.arange(6), 4)
    modality = np.tile([0, 0, 1, 1], 6)
    paths = []
    for i, (p, m) in enumerate(zip(pid, modality)):
        path = root / f"{i:02d}.png"
        Image.fromarray(np.full((32, 16, 3), 40 * p + 20 * m, dtype=np.uint8)).save(path)
        paths.append(str(path))
    rng = np.random.default_rng(0)
    feats = (np.eye(6)[pid] + rng.normal(scale=0.5, size=(24, 6))).astype(np.float32)
    with h5py.File(root / "features.h5", "w") as f:
        f["features"], f["pid"], f["camera"], f["modality"] = feats, pid, modality + 1, modality.astype(np.int8)
        f.create_dataset("path", data=np.array(paths, dtype=object), dtype=h5py.string_dtype("utf-8"))
    return root / "features.h5"


def test_command_line_draws_green_and_red_frames(features_file, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["--features", str(features_file), "--protocol", "regdb", "--mode", "visible->thermal",
                 "--queries", "0", "5", "11", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "queries [0, 5, 11]" in printed and "top 10" in printed
    pixels = (mpimg.imread(out)[..., :3] * 255).round().astype(int)

    def share(colour):
        return np.mean(np.abs(pixels - np.array(colour)).sum(-1) <= 12)

    # Every one of the 3 x 10 tiles has a frame, and each query has 2 true matches in a gallery of 12.
    assert share(GREEN) > 0.002 and share(RED) > 3 * share(GREEN)
    assert main(["--features", str(features_file), "--protocol", "regdb", "--mode", "visible->thermal",
                 "--queries", "12", "--out", str(out)]) == 1
    assert "out of range: this mode has 12 queries" in capsys.readouterr().err
    assert main(["--features", str(tmp_path / "missing.h5"), "--mode", "all-search/single-shot", "--out", str(out)]) == 1
    assert "missing.h5: not a features file" in capsys.readouterr().err
