"""Ranked-list figures: a few queries with their top-k gallery images, true matches framed green,
wrong ones red.

For each dataset, method and protocol mode the report draws :data:`N_QUERIES` queries, chosen
with seed :data:`QUERY_SEED` among the queries that have a true match in the gallery, ranked
against the first gallery trial (``gallery_trial`` 0) of the first training trial, by Euclidean
distance on the features of ``features.h5``, as the evaluate stage ranks them (plain ranking:
the figures do not re-rank). SYSU-MM01's camera rule applies: a camera-3 query's list holds no
camera-2 image. Images are read from the paths ``features.h5`` stores.

From the command line, for chosen queries (0-based positions in the mode's query list, the
order of ``features.h5``)::

    .venv/bin/python -m rgbir_reid.reporting.ranked_lists \\
        --features results/demo/trial1/ce2l/seed0/features.h5 --mode all-search/single-shot \\
        --queries 3 17 42 --out ranked.png

Importing this module loads NumPy only (the workflow reads :func:`figure_name` and
:func:`protocol_modes` when it is parsed); evaluation code and matplotlib load when used.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

N_QUERIES = 4
QUERY_SEED = 0
TOP_K = 10
# The demo dataset has the SYSU-MM01 layout and is evaluated with its protocol.
PROTOCOL_OF_FORMAT = {"sysu_mm01": "sysu_mm01", "demo": "sysu_mm01", "regdb": "regdb"}
TILE = (96, 48)  # height, width of each image in the figure, pixels
FRAME = 4  # frame width, pixels
GREEN, RED, GREY = (0, 170, 60), (215, 25, 28), (120, 120, 120)


def protocol_modes(dataset_format: str, evaluation: Mapping) -> list[str]:
    """The protocol modes the evaluate stage reports for a dataset format: the config's
    ``evaluation.sysu_mm01_modes`` (SYSU-MM01 and the demo) or ``evaluation.regdb_directions``.

    Raises:
        ValueError: an unknown dataset format.
    """
    if dataset_format not in PROTOCOL_OF_FORMAT:
        raise ValueError(f"unknown dataset format {dataset_format!r}; expected one of {sorted(PROTOCOL_OF_FORMAT)}")
    key = "sysu_mm01_modes" if PROTOCOL_OF_FORMAT[dataset_format] == "sysu_mm01" else "regdb_directions"
    return list(evaluation[key])


def figure_name(dataset: str, method: str, mode: str) -> str:
    """File name of a ranked-list figure: ``<dataset>_<method>_<mode>.png`` with the mode's ``/``
    and ``->`` spelt ``_`` and ``-to-`` (``demo_ce2l_all-search_single-shot.png``)."""
    return f"{dataset}_{method}_{mode.replace('->', '-to-').replace('/', '_')}.png"


@dataclass(frozen=True)
class RankedList:
    """Top-k gallery of each chosen query.

    Attributes:
        query: int ``[Q]`` rows of ``features.h5`` of the queries; position: ``[Q]`` their place
            in the mode's query list (what ``--queries`` names).
        gallery: int ``[Q, k]`` rows of the top-k gallery images, nearest first (fewer than k
            columns when the gallery is smaller).
        match: bool ``[Q, k]``, whether each has the query's identity.
        distance: float ``[Q, k]`` Euclidean distances.
    """

    query: np.ndarray
    position: np.ndarray
    gallery: np.ndarray
    match: np.ndarray
    distance: np.ndarray


def query_and_gallery(
    pid: np.ndarray,
    camera: np.ndarray,
    modality: np.ndarray,
    paths: Sequence[str],
    *,
    protocol: str,
    mode: str,
    sampler: str = "seeded",
    rand_perm_file: str | Path | None = None,
    gallery_trial: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the queries and of the gallery of one gallery trial, as the evaluate stage forms them.

    Args:
        pid, camera, modality: ``[N]`` per test image (modality 0 visible, 1 thermal).
        paths: ``[N]`` image paths (their order within a folder places SYSU-MM01 images).
        protocol: ``"sysu_mm01"`` or ``"regdb"``; mode: one of its modes.
        sampler, rand_perm_file: SYSU-MM01's gallery sampler (``rand_perm_cam.mat`` for official).
        gallery_trial: 0-based.

    Returns:
        ``(query rows int [Q], gallery rows int [G])``.

    Raises:
        ValueError: unknown protocol, mode or direction; as the protocol functions otherwise.
    """
    from rgbir_reid.evaluation import protocols

    pid, camera, modality = (np.asarray(x, dtype=np.int64) for x in (pid, camera, modality))
    if protocol == "sysu_mm01":
        rand_perm = protocols.load_rand_perm_cam(rand_perm_file) if sampler == "official" and rand_perm_file else None
        positions = protocols.folder_positions(camera, pid, paths)
        gallery = protocols.sysu_gallery_indices(camera, pid, positions, mode=mode, trial=gallery_trial,
                                                 sampler=sampler, rand_perm=rand_perm)
        return protocols.sysu_query_indices(camera, pid), gallery
    if protocol == "regdb":
        if mode not in protocols.REGDB_DIRECTIONS:
            raise ValueError(f"unknown RegDB direction {mode!r}; expected one of {tuple(protocols.REGDB_DIRECTIONS)}")
        q_mod, g_mod = protocols.REGDB_DIRECTIONS[mode]
        return np.flatnonzero(modality == q_mod), np.flatnonzero(modality == g_mod)
    raise ValueError(f"unknown protocol {protocol!r}; expected 'sysu_mm01' or 'regdb'")


def rank_queries(
    features: np.ndarray,
    pid: np.ndarray,
    camera: np.ndarray,
    query: np.ndarray,
    gallery: np.ndarray,
    *,
    protocol: str,
    positions: Sequence[int] | None = None,
    n_queries: int = N_QUERIES,
    seed: int = QUERY_SEED,
    top_k: int = TOP_K,
) -> RankedList:
    """Rank the gallery for some queries: the ones at ``positions`` of ``query``, or else
    ``n_queries`` drawn with ``np.random.default_rng(seed)`` among those with a true match.

    Args:
        features: float ``[N, D]``; pid, camera: int ``[N]``; query, gallery: row indices.
        protocol: ``"sysu_mm01"`` applies the camera-3 / camera-2 rule; ``"regdb"`` none.
        positions: 0-based positions in ``query``.
        top_k: gallery images per query.

    Raises:
        ValueError: a position outside ``0 .. len(query) - 1``; no query with a true match.
    """
    from rgbir_reid.evaluation.metrics import SYSU_SAME_ROOM_GALLERY_CAMERA, SYSU_SAME_ROOM_QUERY_CAMERA
    from rgbir_reid.evaluation.protocols import euclidean_distances

    query, gallery = np.asarray(query), np.asarray(gallery)
    pid, camera = np.asarray(pid), np.asarray(camera)
    dist = euclidean_distances(features[query], features[gallery]).astype(np.float64)
    if protocol == "sysu_mm01":
        same_room = (camera[query] == SYSU_SAME_ROOM_QUERY_CAMERA)[:, None] & (camera[gallery] == SYSU_SAME_ROOM_GALLERY_CAMERA)[None, :]
        dist[same_room] = np.inf
    has_match = ((pid[query][:, None] == pid[gallery][None, :]) & np.isfinite(dist)).any(1)
    if positions is None:
        valid = np.flatnonzero(has_match)
        if len(valid) == 0:
            raise ValueError("no query has a true match in the gallery")
        chosen = np.sort(np.random.default_rng(seed).choice(valid, size=min(n_queries, len(valid)), replace=False))
    else:
        chosen = np.asarray(positions, dtype=np.int64)
        bad = chosen[(chosen < 0) | (chosen >= len(query))]
        if len(bad):
            raise ValueError(f"query positions {bad.tolist()} out of range: this mode has {len(query)} queries (0..{len(query) - 1})")
    order = np.argsort(dist[chosen], axis=1, kind="stable")
    n_finite = np.isfinite(dist[chosen]).sum(1).min()
    order = order[:, : min(top_k, int(n_finite))]
    top = gallery[order]
    return RankedList(
        query=query[chosen],
        position=chosen,
        gallery=top,
        match=pid[top] == pid[query[chosen]][:, None],
        distance=np.take_along_axis(dist[chosen], order, axis=1),
    )


def _tile(path: str, colour: tuple[int, int, int]) -> np.ndarray:
    """One image as a uint8 ``[TILE + 2 FRAME, 3]`` tile framed in ``colour``."""
    from PIL import Image

    h, w = TILE
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("RGB").resize((w, h), Image.BILINEAR))
    tile = np.empty((h + 2 * FRAME, w + 2 * FRAME, 3), dtype=np.uint8)
    tile[:] = colour
    tile[FRAME:FRAME + h, FRAME:FRAME + w] = pixels
    return tile


def plot_ranked_list(ranked: RankedList, paths: Sequence[str], pid: np.ndarray, out_path: str | Path, *, title: str = "") -> Path:
    """Draw ``ranked`` as one row per query: the query (grey frame), a gap, then its top-k
    gallery images framed green (same identity) or red, rank numbers above; written as PNG.

    Raises:
        DatasetFormatError: an image cannot be read (names the file).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rgbir_reid.data.records import DatasetFormatError
    from rgbir_reid.io import atomic_output

    th, tw = TILE[0] + 2 * FRAME, TILE[1] + 2 * FRAME
    gap, pad = tw // 2, 4
    k = ranked.gallery.shape[1]
    mosaic = np.full((len(ranked.query) * (th + pad), tw + gap + k * (tw + pad), 3), 255, dtype=np.uint8)
    for r, q in enumerate(ranked.query):
        y = r * (th + pad)
        try:
            mosaic[y:y + th, :tw] = _tile(paths[q], GREY)
            for c, g in enumerate(ranked.gallery[r]):
                x = tw + gap + c * (tw + pad)
                mosaic[y:y + th, x:x + tw] = _tile(paths[g], GREEN if ranked.match[r, c] else RED)
        except OSError as err:
            raise DatasetFormatError(f"cannot read an image of the ranked list ({err})") from err
    scale = 0.011  # inches per mosaic pixel: about one figure pixel each at 100 dpi
    fig = plt.figure(figsize=(mosaic.shape[1] * scale + 1.2, mosaic.shape[0] * scale + 0.6))
    ax = fig.add_axes((1.0 / (mosaic.shape[1] * scale + 1.2), 0.02, 1 - 1.05 / (mosaic.shape[1] * scale + 1.2), 0.88))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    ax.text(tw / 2, -6, "query", ha="center", va="bottom", fontsize=7)
    for c in range(k):
        ax.text(tw + gap + c * (tw + pad) + tw / 2, -6, str(c + 1), ha="center", va="bottom", fontsize=7)
    for r, (q, pos) in enumerate(zip(ranked.query, ranked.position)):
        ax.text(-6, r * (th + pad) + th / 2, f"#{pos}\nid {pid[q]}", ha="right", va="center", fontsize=6)
    if title:
        fig.suptitle(title, fontsize=8, y=0.995)
    out_path = Path(out_path)
    with atomic_output(out_path) as tmp:
        fig.savefig(tmp, dpi=100, format="png", pil_kwargs={"compress_level": 1})  # fast: the encoder took half the time
    plt.close(fig)
    return out_path


def _run_name(features_h5: str | Path) -> str:
    """The method (and training seed) of a features file in the workflow's layout:
    ``.../ce2l/seed0/features.h5`` -> ``ce2l seed 0``, ``.../hog/features.h5`` -> ``hog``."""
    folder = Path(features_h5).resolve().parent
    if folder.name.startswith("seed") and folder.name[4:].isdigit():
        return f"{folder.parent.name} seed {folder.name[4:]}"
    return folder.name


def ranked_list_figure(
    features_h5: str | Path,
    out_path: str | Path,
    *,
    mode: str,
    protocol: str = "sysu_mm01",
    sampler: str = "seeded",
    rand_perm_file: str | Path | None = None,
    positions: Sequence[int] | None = None,
    title: str = "",
) -> RankedList:
    """Read ``features.h5`` (features, pid, camera, modality, path), rank the gallery of gallery
    trial 0 for the chosen queries (:func:`rank_queries`) and draw them (:func:`plot_ranked_list`).

    Raises:
        ValueError: as :func:`query_and_gallery` and :func:`rank_queries`; a features file
            without the datasets above (names the file).
    """
    import h5py

    try:
        with h5py.File(features_h5, "r") as f:
            features, pid, camera, modality = (f[k][()] for k in ("features", "pid", "camera", "modality"))
            paths = list(f["path"].asstr()[()])
    except (OSError, KeyError) as err:
        raise ValueError(f"{features_h5}: not a features file with features, pid, camera, modality and path ({err})") from err
    query, gallery = query_and_gallery(pid, camera, modality, paths, protocol=protocol, mode=mode,
                                       sampler=sampler, rand_perm_file=rand_perm_file)
    ranked = rank_queries(features, pid, camera, query, gallery, protocol=protocol, positions=positions)
    plot_ranked_list(ranked, paths, pid, out_path, title=title or f"{_run_name(features_h5)}: {mode} (gallery trial 0)")
    return ranked


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: one ranked-list figure for chosen (or seeded) queries; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m rgbir_reid.reporting.ranked_lists", description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", required=True, help="features.h5 of one method and trial")
    parser.add_argument("--mode", required=True, help="e.g. all-search/single-shot (SYSU-MM01, demo) or visible->thermal (RegDB)")
    parser.add_argument("--protocol", default="sysu_mm01", choices=["sysu_mm01", "regdb"], help="the dataset's protocol (demo: sysu_mm01)")
    parser.add_argument("--queries", type=int, nargs="*", help="0-based positions in the mode's query list; default: 4 seeded ones")
    parser.add_argument("--sampler", default="seeded", choices=["seeded", "official"], help="SYSU-MM01 gallery sampler")
    parser.add_argument("--rand-perm", help="rand_perm_cam.mat, for --sampler official")
    parser.add_argument("--out", required=True, help="output PNG")
    args = parser.parse_args(argv)
    try:
        ranked = ranked_list_figure(args.features, args.out, mode=args.mode, protocol=args.protocol, sampler=args.sampler,
                                    rand_perm_file=args.rand_perm, positions=args.queries or None)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.out}: queries {ranked.position.tolist()}, true matches in the top {ranked.gallery.shape[1]}: "
          f"{ranked.match.sum(1).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
