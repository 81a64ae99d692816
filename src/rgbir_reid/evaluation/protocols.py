"""Evaluation protocols of SYSU-MM01 and RegDB, on top of :func:`rank_metrics`.

SYSU-MM01 (Wu et al., ICCV 2017; official code ``wuancong/SYSU-MM01/evaluation``):
queries are every infrared image (cameras 3 and 6) of the test identities; the gallery holds
one (single-shot) or ten (multi-shot) RGB images per identity per camera, from cameras 1, 2, 4, 5
(all-search) or 1, 2 (indoor-search), drawn anew in each of 10 gallery trials. Two samplers:

- ``official``: the dataset's ``rand_perm_cam.mat``. Trial ``t`` takes the first 1 or 10 entries
  of row ``t`` of ``rand_perm_cam{camera}{id}``, 1-based indices into the sorted file list of
  ``camK/PPPP/``. Empty cells (no images) are skipped.
- ``seeded``: trial ``t`` (0-based) uses ``np.random.default_rng(t)`` and, visiting the
  (identity, camera) groups in ascending order, draws ``min(n_shot, n_images)`` distinct images
  of each with ``rng.choice(n_images, size, replace=False)``; the chosen images keep their folder
  order. This is the kind of sampler the common PyTorch baselines use (they seed Python's
  ``random`` with the trial), so their exact galleries are not reproduced, only the procedure.

Indoor-search identities. The official MATLAB code evaluates indoor-search on the same 96
test identities as all-search: all 3803 infrared images are queries, and the 40 identities
that never appear in RGB cameras 1 and 2 simply have no true match, so their queries are
skipped (``valid_probe_sample_count``). AlignGAN's Python port instead loads
``test_id_indoor.mat``, the 56 test identities seen by cameras 1 and 2 (2208 queries). Those 56
are exactly the test identities with images in cameras 1 and 2 (checked on the real files), and
both codes count only queries with a true match, so on the same gallery the two settings give
identical CMC, mAP and mINP; only the reported query count differs (3803 vs 2208). Published
indoor-search tables (Wu et al. 2017, and the papers using the official code or its ports:
BDTR/HCML, D²RL, AlignGAN, CE²L) therefore compare like with like. Numbers do differ for code
that divides by *all* queries (e.g. averaging CMC over 3803 queries, which scales rank-k by
2208/3803 ≈ 0.58) or that draws the gallery with its own seeds instead of ``rand_perm_cam.mat``
(a change of a few points between trials). Here ``indoor_ids=None`` (the default) follows the
official code; passing the ids of ``test_id_indoor.mat`` follows AlignGAN's port.

Distances: Euclidean distance between the features as given (the extract stage writes
L2-normalised features, for which the ranking equals the cosine-similarity ranking).

RegDB (Nguyen et al., Sensors 2017; protocol of Ye et al., AAAI 2018): in each of its 10
trials, every visible test image queries the thermal test images (visible->thermal) and the
reverse (thermal->visible); no camera removal, plain CMC.

Re-ranking (opt-in, ``rerank=`` :class:`~rgbir_reid.evaluation.rerank.RerankSettings`): each
evaluation is done twice, on the Euclidean distances and on the k-reciprocal re-ranked ones
(Zhong et al., CVPR 2017; :func:`~rgbir_reid.evaluation.rerank.rerank_distances`, computed on
the queries and the gallery of that evaluation); every row says which in its ``rerank`` key.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import scipy.io

from rgbir_reid.data.records import DatasetFormatError
from rgbir_reid.evaluation.metrics import REGDB, SYSU_MM01, ChanceMetrics, RankMetrics, chance_metrics, rank_metrics
from rgbir_reid.evaluation.rerank import RerankSettings, rerank_distances

SYSU_SEARCH_CAMERAS = {"all-search": (1, 2, 4, 5), "indoor-search": (1, 2)}
SYSU_VISIBLE_CAMERAS = SYSU_SEARCH_CAMERAS["all-search"]  # all-search searches every RGB camera
SYSU_THERMAL_CAMERAS = (3, 6)
SYSU_SHOTS = {"single-shot": 1, "multi-shot": 10}
SYSU_MODES = tuple(f"{search}/{shot}" for search in SYSU_SEARCH_CAMERAS for shot in SYSU_SHOTS)
SYSU_SAMPLERS = ("official", "seeded")
SYSU_N_TRIALS = 10

VISIBLE_TO_THERMAL = "visible->thermal"
THERMAL_TO_VISIBLE = "thermal->visible"
REGDB_DIRECTIONS = {VISIBLE_TO_THERMAL: (0, 1), THERMAL_TO_VISIBLE: (1, 0)}  # (query, gallery) modality code

RANK_KEYS = (1, 10, 20)


@dataclass(frozen=True)
class EvaluationSettings:
    """Settings of the evaluate stage (field names are config keys).

    Attributes:
        sysu_modes: SYSU-MM01 modes among :data:`SYSU_MODES` ("all-search/single-shot", ...).
            CE²L reports all-search single-shot; the other three cost little.
        sysu_sampler: ``"official"`` (``rand_perm_cam.mat``) or ``"seeded"``.
        sysu_n_trials: gallery trials (10 in the official protocol).
        sysu_rand_perm_file: path of ``rand_perm_cam.mat``; required by the official sampler.
        sysu_indoor_id_file: ``test_id_indoor.mat`` to restrict indoor-search to its 56 ids
            (AlignGAN's port); ``None`` keeps all test ids (official code). Same numbers, see the
            module docstring.
        regdb_directions: RegDB query->gallery directions.
        max_rank: CMC length.
        rerank: k-reciprocal re-ranking settings; when set, every evaluation also yields a
            re-ranked row (``rerank: True``). None (the default): plain rows only.
    """

    sysu_modes: tuple[str, ...] = SYSU_MODES
    sysu_sampler: str = "official"
    sysu_n_trials: int = SYSU_N_TRIALS
    sysu_rand_perm_file: str | None = None
    sysu_indoor_id_file: str | None = None
    regdb_directions: tuple[str, ...] = (VISIBLE_TO_THERMAL, THERMAL_TO_VISIBLE)
    max_rank: int = 20
    rerank: RerankSettings | None = None


# --------------------------------------------------------------------------- SYSU-MM01 files


def _load_mat_variable(path: str | Path, name: str) -> np.ndarray:
    """One variable of a MATLAB file; DatasetFormatError naming the file if it is unreadable or lacks it."""
    try:
        mat = scipy.io.loadmat(str(path))
    except (OSError, ValueError) as err:
        raise DatasetFormatError(f"{path}: cannot read as a MATLAB file ({err})") from err
    if name not in mat:
        raise DatasetFormatError(f"{path}: no variable {name!r} (found {sorted(k for k in mat if not k.startswith('__'))})")
    return mat[name]


def load_rand_perm_cam(path: str | Path) -> dict[tuple[int, int], np.ndarray]:
    """Read the official ``rand_perm_cam.mat``.

    Returns:
        ``{(camera, pid): int64 [n_trials, n_images]}`` of 0-based positions into the sorted file
        list of ``camK/PPPP/``; cells without images are left out.

    Raises:
        DatasetFormatError: the file lacks ``rand_perm_cam`` or its cells are not as expected.
    """
    cams = _load_mat_variable(path, "rand_perm_cam")
    if cams.dtype != object or cams.size != 6:
        raise DatasetFormatError(f"{path}: 'rand_perm_cam' should be a 6-cell array (one per camera), got {cams.dtype} {cams.shape}")
    out: dict[tuple[int, int], np.ndarray] = {}
    for cam_index, cam_cell in enumerate(cams.ravel()):
        if cam_cell.dtype != object:
            raise DatasetFormatError(f"{path}: rand_perm_cam{{{cam_index + 1}}} should be a cell array of ids")
        for pid_index, perm in enumerate(cam_cell.ravel()):
            perm = np.asarray(perm)
            if perm.size == 0:
                continue
            if perm.ndim != 2 or perm.min() < 1 or np.any(np.sort(perm, axis=1) != np.arange(1, perm.shape[1] + 1)):
                raise DatasetFormatError(
                    f"{path}: rand_perm_cam{{{cam_index + 1}}}{{{pid_index + 1}}} should hold rows that are "
                    f"permutations of 1..n, got shape {perm.shape}"
                )
            out[(cam_index + 1, pid_index + 1)] = perm.astype(np.int64) - 1
    return out


def load_sysu_id_list(path: str | Path) -> np.ndarray:
    """Identities of an official id file (``test_id.mat``, ``test_id_indoor.mat``): sorted int64 ``[K]``.

    Raises:
        DatasetFormatError: the file has no ``id`` variable.
    """
    return np.sort(np.asarray(_load_mat_variable(path, "id")).ravel().astype(np.int64))


def folder_positions(cameras: Sequence[int], pids: Sequence[int], paths: Sequence[str]) -> np.ndarray:
    """Position of each image within its sorted ``camK/PPPP/`` folder: int64 ``[N]``, 0-based.

    The position is the rank of the path among the paths of the same (camera, pid), sorted as
    strings; for the dataset's zero-padded ``NNNN.jpg`` names this is the folder's file order.

    Raises:
        ValueError: lengths differ, or a path occurs twice.
    """
    cameras = np.asarray(cameras, dtype=np.int64)
    pids = np.asarray(pids, dtype=np.int64)
    paths = [str(p) for p in paths]
    if not (len(cameras) == len(pids) == len(paths)):
        raise ValueError(f"cameras ({len(cameras)}), pids ({len(pids)}) and paths ({len(paths)}) differ in length")
    if len(set(paths)) != len(paths):
        raise ValueError("paths are not unique: an image appears twice in the features")
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, key in enumerate(zip(cameras.tolist(), pids.tolist())):
        groups[key].append(i)
    pos = np.empty(len(paths), dtype=np.int64)
    for rows in groups.values():
        for rank, i in enumerate(sorted(rows, key=lambda r: paths[r])):
            pos[i] = rank
    return pos


# --------------------------------------------------------------------------- SYSU-MM01 sets


def _split_sysu_mode(mode: str) -> tuple[str, str]:
    """``"all-search/single-shot"`` -> ``("all-search", "single-shot")``; ValueError for an unknown mode."""
    search, _, shot = mode.partition("/")
    if search not in SYSU_SEARCH_CAMERAS or shot not in SYSU_SHOTS:
        raise ValueError(f"unknown SYSU-MM01 mode {mode!r}; expected one of {SYSU_MODES}")
    return search, shot


def parse_sysu_mode(mode: str) -> tuple[tuple[int, ...], int]:
    """``"all-search/single-shot"`` -> (gallery cameras, images per identity per camera).

    Raises:
        ValueError: unknown mode (the message lists the valid ones).
    """
    search, shot = _split_sysu_mode(mode)
    return SYSU_SEARCH_CAMERAS[search], SYSU_SHOTS[shot]


def sysu_query_indices(cameras: np.ndarray, pids: np.ndarray, ids: Iterable[int] | None = None) -> np.ndarray:
    """Rows of the query set: every infrared image (cameras 3, 6), optionally of ``ids`` only. int64 ``[Q]``."""
    cameras = np.asarray(cameras)
    keep = np.isin(cameras, SYSU_THERMAL_CAMERAS)
    if ids is not None:
        keep &= np.isin(np.asarray(pids), np.asarray(list(ids)))
    return np.flatnonzero(keep)


@dataclass(frozen=True)
class _GalleryFolders:
    """The gallery candidates of one mode, checked once and shared by all its gallery trials."""

    folders: tuple[np.ndarray, ...]  # int64 rows of each (pid, camera) folder, in folder order
    perms: tuple[np.ndarray, ...] | None  # each folder's rand_perm_cam [n_trials, n]; None when seeded
    n_shot: int  # images drawn per folder


def _gallery_folders(
    cameras: np.ndarray,
    pids: np.ndarray,
    positions: np.ndarray,
    *,
    mode: str,
    rand_perm: dict[tuple[int, int], np.ndarray] | None,
    ids: Iterable[int] | None,
) -> _GalleryFolders:
    """Group the gallery candidates of ``mode`` by (pid, camera) folder; with ``rand_perm`` (the
    official sampler), check each folder against its permutation (DatasetFormatError otherwise)."""
    gallery_cams, n_shot = parse_sysu_mode(mode)
    cameras = np.asarray(cameras, dtype=np.int64)
    pids = np.asarray(pids, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.int64)
    keep = np.isin(cameras, gallery_cams)
    if ids is not None:
        keep &= np.isin(pids, np.asarray(list(ids), dtype=np.int64))
    rows = np.flatnonzero(keep)
    rows = rows[np.lexsort((positions[rows], cameras[rows], pids[rows]))]
    keys = np.stack([pids[rows], cameras[rows]], axis=1)
    bounds = np.flatnonzero(np.r_[True, np.any(keys[1:] != keys[:-1], axis=1), True])
    folders = tuple(rows[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
    if rand_perm is None:
        return _GalleryFolders(folders, None, n_shot)
    perms = []
    for group in folders:
        pid, cam, n = int(pids[group[0]]), int(cameras[group[0]]), len(group)
        perm = rand_perm.get((cam, pid))
        if perm is None:
            raise DatasetFormatError(f"rand_perm_cam has no permutation for camera {cam}, id {pid}, which has {n} images")
        if perm.shape[1] != n or not np.array_equal(np.sort(positions[group]), np.arange(n)):
            raise DatasetFormatError(
                f"cam{cam}/{pid:04d}: rand_perm_cam indexes {perm.shape[1]} images but the features hold {n} "
                f"(folder positions {sorted(positions[group].tolist())[:5]}...); the official sampler needs the full "
                "test set of the dataset (use sampler='seeded' otherwise)"
            )
        perms.append(perm)
    return _GalleryFolders(folders, tuple(perms), n_shot)


def _pick_gallery(gallery: _GalleryFolders, trial: int) -> np.ndarray:
    """Rows of gallery trial ``trial`` (0-based): row ``trial`` of each folder's permutation, or
    seed ``trial`` visiting the folders in order. int64 ``[G]``; ValueError if ``trial`` exceeds
    the permutations' trials."""
    rng = np.random.default_rng(trial) if gallery.perms is None else None
    chosen: list[np.ndarray] = []
    for i, group in enumerate(gallery.folders):
        n = len(group)
        if gallery.perms is not None:
            perm = gallery.perms[i]
            if trial >= perm.shape[0]:
                raise ValueError(f"trial {trial} out of range: rand_perm_cam has {perm.shape[0]} trials")
            pick = np.sort(perm[trial, : gallery.n_shot])
        else:
            pick = np.sort(rng.choice(n, size=min(gallery.n_shot, n), replace=False))  # type: ignore[union-attr]
        chosen.append(group[pick])  # group is in folder order, so position p is group[p]
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def _check_sampler(sampler: str) -> None:
    if sampler not in SYSU_SAMPLERS:
        raise ValueError(f"unknown SYSU-MM01 gallery sampler {sampler!r}; expected one of {SYSU_SAMPLERS}")


def sysu_gallery_indices(
    cameras: np.ndarray,
    pids: np.ndarray,
    positions: np.ndarray,
    *,
    mode: str,
    trial: int,
    sampler: str,
    rand_perm: dict[tuple[int, int], np.ndarray] | None = None,
    ids: Iterable[int] | None = None,
) -> np.ndarray:
    """Rows of the gallery of one SYSU-MM01 trial, from a table of (camera, pid, folder position).

    Args:
        cameras, pids, positions: ``[N]`` per image; ``positions`` from :func:`folder_positions`.
        mode: one of :data:`SYSU_MODES`.
        trial: gallery trial, 0-based (row ``trial`` of ``rand_perm_cam``, or seed ``trial``).
        sampler: ``"official"`` or ``"seeded"`` (see the module docstring).
        rand_perm: from :func:`load_rand_perm_cam`; required by the official sampler.
        ids: restrict the gallery to these identities (e.g. ``test_id_indoor.mat``).

    Returns:
        int64 ``[G]`` row indices, ordered by (pid, camera, folder position).

    Raises:
        ValueError: unknown mode or sampler, missing ``rand_perm``, trial out of range.
        DatasetFormatError: a (camera, pid) folder's image count disagrees with ``rand_perm_cam``
            (the permutations index a different file list).
    """
    parse_sysu_mode(mode)
    _check_sampler(sampler)
    if sampler == "official" and rand_perm is None:
        raise ValueError("the official SYSU-MM01 sampler needs rand_perm (load_rand_perm_cam('rand_perm_cam.mat'))")
    if trial < 0:
        raise ValueError(f"trial must be >= 0, got {trial}")
    gallery = _gallery_folders(
        cameras, pids, positions, mode=mode, rand_perm=rand_perm if sampler == "official" else None, ids=ids
    )
    return _pick_gallery(gallery, trial)


# --------------------------------------------------------------------------- distances, rows


def euclidean_distances(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[Q, G]`` (float32) between feature rows ``[Q, D]`` and ``[G, D]``."""
    q = np.asarray(query, dtype=np.float32)
    g = np.asarray(gallery, dtype=np.float32)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"features must be [Q, D] and [G, D] with the same D, got {q.shape} and {g.shape}")
    sq = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * (q @ g.T)
    return np.sqrt(np.maximum(sq, 0.0, out=sq), out=sq)


def nearest_neighbour_rank1(features: np.ndarray, pid: np.ndarray, camera: np.ndarray,
                            query: np.ndarray, gallery: np.ndarray) -> float:
    """Share of ``query`` rows whose nearest ``gallery`` row from another camera has their pid.

    A diagnostic outside the published protocols (the demo benchmarks print it per modality
    pair, e.g. infrared->infrared: how well one modality's features tell identities apart):
    every gallery image counts, no gallery sampling, Euclidean distance.

    Args:
        features: float ``[N, D]``; pid, camera: int ``[N]``.
        query, gallery: row indices into ``features`` (int ``[Q]``, ``[G]``).

    Returns:
        Rank-1 in [0, 1]; a query whose every gallery row shares its camera counts as a miss.

    Raises:
        ValueError: as :func:`euclidean_distances`, on feature shapes that do not match.
    """
    query, gallery = np.asarray(query), np.asarray(gallery)
    dist = euclidean_distances(features[query], features[gallery])
    dist[camera[query][:, None] == camera[gallery][None]] = np.inf
    hit = (pid[gallery][dist.argmin(1)] == pid[query]) & np.isfinite(dist.min(1))
    return float(hit.mean())


def metrics_row(
    result: RankMetrics, chance: ChanceMetrics, *, dataset_format: str, protocol: str, mode: str, gallery_trial: int, n_gallery: int,
    rerank: bool = False,
) -> dict:
    """The row dict of one evaluation (fractions in [0, 1]); ``rankK`` is None when K > max_rank.

    ``chance_rank1``, ``chance_mAP``, ``chance_mINP``: the same metrics expected from a uniformly
    random ranking of this query/gallery split (:func:`chance_metrics`), over the same queries.
    ``rerank``: whether the distances were k-reciprocal re-ranked.
    """
    cmc = [float(x) for x in result.cmc]
    row = {"dataset_format": dataset_format, "protocol": protocol, "mode": mode, "gallery_trial": int(gallery_trial),
           "rerank": bool(rerank)}
    for k in RANK_KEYS:
        row[f"rank{k}"] = cmc[k - 1] if k <= len(cmc) else None
    row.update(
        mAP=float(result.mAP),
        mINP=float(result.mINP),
        cmc=cmc,
        n_query=int(result.n_query),
        n_valid_query=int(result.n_valid_query),
        n_gallery=int(n_gallery),
        chance_rank1=float(chance.rank1),
        chance_mAP=float(chance.mAP),
        chance_mINP=float(chance.mINP),
    )
    return row


def evaluate_sysu_mm01(
    features: np.ndarray,
    pids: np.ndarray,
    cams: np.ndarray,
    paths: Sequence[str],
    *,
    modes: Sequence[str] = SYSU_MODES,
    sampler: str = "official",
    n_trials: int = SYSU_N_TRIALS,
    rand_perm_file: str | Path | None = None,
    indoor_ids: Iterable[int] | None = None,
    max_rank: int = 20,
    rerank: RerankSettings | None = None,
) -> list[dict]:
    """SYSU-MM01 evaluation of the test features of one training trial.

    Args:
        features: float ``[N, D]`` (the extract stage's L2-normalised features) of all test images.
        pids, cams: int ``[N]``; cameras 1..6 (3 and 6 infrared).
        paths: ``[N]`` image paths ending in ``camK/PPPP/NNNN.jpg``; only their order within a
            (camera, pid) folder is used, to find each image's position in the sorted folder.
        modes: among :data:`SYSU_MODES`.
        sampler: ``"official"`` (needs ``rand_perm_file``) or ``"seeded"``.
        n_trials: gallery trials ``0 .. n_trials-1``.
        rand_perm_file: path of ``rand_perm_cam.mat``.
        indoor_ids: identities to keep for indoor-search (``test_id_indoor.mat``); None = all.
        max_rank: CMC length.
        rerank: when set, each (mode, gallery trial) also gets a row on the k-reciprocal re-ranked
            distances of its queries and gallery (``rerank: True``), right after its plain row.

    Returns:
        One row per (mode, gallery trial), see :func:`metrics_row`; ``protocol`` reads e.g.
        ``"sysu_mm01 all-search single-shot official"`` (with ``" indoor-ids"`` appended when
        ``indoor_ids`` restricts an indoor-search mode). Distance: Euclidean.

    Raises:
        ValueError: bad arguments, or a mode/trial whose queries have no true match.
        DatasetFormatError: the features disagree with ``rand_perm_cam.mat``.
    """
    features = np.asarray(features)
    pids = np.asarray(pids, dtype=np.int64)
    cams = np.asarray(cams, dtype=np.int64)
    n = features.shape[0]
    if not (len(pids) == len(cams) == len(paths) == n):
        raise ValueError(f"features ({n}), pids ({len(pids)}), cams ({len(cams)}) and paths ({len(paths)}) differ in length")
    for mode in modes:
        parse_sysu_mode(mode)
    _check_sampler(sampler)
    rand_perm = None
    if sampler == "official":
        if rand_perm_file is None:
            raise ValueError("sampler='official' needs rand_perm_file (the dataset's rand_perm_cam.mat)")
        rand_perm = load_rand_perm_cam(rand_perm_file)
    indoor = None if indoor_ids is None else np.asarray(sorted(set(int(i) for i in indoor_ids)), dtype=np.int64)
    positions = folder_positions(cams, pids, paths)

    # Distances from every query to every RGB image, computed once and sliced per gallery.
    q_all = sysu_query_indices(cams, pids)
    rgb = np.flatnonzero(np.isin(cams, SYSU_VISIBLE_CAMERAS))
    if len(q_all) == 0 or len(rgb) == 0:
        raise ValueError(f"SYSU-MM01 features need infrared (3, 6) and RGB (1, 2, 4, 5) images; got cameras {sorted(set(cams.tolist()))}")
    dist = euclidean_distances(features[q_all], features[rgb])
    q_col = np.full(n, -1, dtype=np.int64)
    q_col[q_all] = np.arange(len(q_all))
    rgb_col = np.full(n, -1, dtype=np.int64)
    rgb_col[rgb] = np.arange(len(rgb))

    rows: list[dict] = []
    for mode in modes:
        search, shot = _split_sysu_mode(mode)
        ids = indoor if search == "indoor-search" else None
        q_rows = sysu_query_indices(cams, pids, ids)
        q_sel = q_col[q_rows]
        protocol = f"sysu_mm01 {search} {shot} {sampler}" + (" indoor-ids" if ids is not None else "")
        # Folders and their rand_perm_cam check do not depend on the trial: built once per mode.
        gallery = _gallery_folders(cams, pids, positions, mode=mode, rand_perm=rand_perm, ids=ids)
        q_q = None if rerank is None else euclidean_distances(features[q_rows], features[q_rows])
        for t in range(n_trials):
            g_rows = _pick_gallery(gallery, t)
            d = dist[np.ix_(q_sel, rgb_col[g_rows])]
            split = (pids[q_rows], pids[g_rows], cams[q_rows], cams[g_rows])
            chance = chance_metrics(*split, protocol=SYSU_MM01)
            named = dict(dataset_format=SYSU_MM01, protocol=protocol, mode=mode, gallery_trial=t, n_gallery=len(g_rows))
            res = rank_metrics(d, *split, protocol=SYSU_MM01, max_rank=max_rank)
            rows.append(metrics_row(res, chance, **named))
            if rerank is not None:
                d_re = rerank_distances(d, q_q, euclidean_distances(features[g_rows], features[g_rows]), rerank)
                rows.append(metrics_row(rank_metrics(d_re, *split, protocol=SYSU_MM01, max_rank=max_rank), chance, **named, rerank=True))
    return rows


def evaluate_regdb(
    features: np.ndarray,
    pids: np.ndarray,
    modalities: np.ndarray,
    *,
    directions: Sequence[str] = (VISIBLE_TO_THERMAL, THERMAL_TO_VISIBLE),
    max_rank: int = 20,
    rerank: RerankSettings | None = None,
) -> list[dict]:
    """RegDB evaluation of the test features of one trial, in each query->gallery direction.

    Args:
        features: float ``[N, D]``; pids int ``[N]``; modalities int ``[N]`` (0 visible, 1 thermal).
        directions: among ``"visible->thermal"``, ``"thermal->visible"``.
        rerank: when set, each direction also gets a re-ranked row (``rerank: True``).

    Returns:
        One row per direction (``gallery_trial`` 0; ``protocol`` ``"regdb visible->thermal"``...).
        Distance: Euclidean. No camera removal; plain CMC.

    Raises:
        ValueError: unknown direction, lengths that differ, a modality with no image.
    """
    features = np.asarray(features)
    pids = np.asarray(pids, dtype=np.int64)
    modalities = np.asarray(modalities, dtype=np.int64)
    if not (len(pids) == len(modalities) == features.shape[0]):
        raise ValueError(f"features ({features.shape[0]}), pids ({len(pids)}) and modalities ({len(modalities)}) differ in length")
    rows = []
    for direction in directions:
        if direction not in REGDB_DIRECTIONS:
            raise ValueError(f"unknown RegDB direction {direction!r}; expected one of {tuple(REGDB_DIRECTIONS)}")
        q_mod, g_mod = REGDB_DIRECTIONS[direction]
        q = np.flatnonzero(modalities == q_mod)
        g = np.flatnonzero(modalities == g_mod)
        if len(q) == 0 or len(g) == 0:
            raise ValueError(f"RegDB {direction}: no {'query' if len(q) == 0 else 'gallery'} image (modality codes {sorted(set(modalities.tolist()))})")
        d = euclidean_distances(features[q], features[g])
        # RegDB has one camera per modality; cameras only matter to the SYSU-MM01 rule.
        split = (pids[q], pids[g], np.zeros(len(q)), np.ones(len(g)))
        res = rank_metrics(d, *split, protocol=REGDB, max_rank=max_rank)
        chance = chance_metrics(*split, protocol=REGDB)
        named = dict(dataset_format=REGDB, protocol=f"regdb {direction}", mode=direction, gallery_trial=0, n_gallery=len(g))
        rows.append(metrics_row(res, chance, **named))
        if rerank is not None:
            d_re = rerank_distances(d, euclidean_distances(features[q], features[q]), euclidean_distances(features[g], features[g]), rerank)
            rows.append(metrics_row(rank_metrics(d_re, *split, protocol=REGDB, max_rank=max_rank), chance, **named, rerank=True))
    return rows


def evaluate_features(
    features: np.ndarray,
    pids: np.ndarray,
    cams: np.ndarray,
    modalities: np.ndarray,
    paths: Sequence[str],
    *,
    dataset_format: str,
    settings: EvaluationSettings = EvaluationSettings(),
) -> list[dict]:
    """Dispatch to :func:`evaluate_sysu_mm01` or :func:`evaluate_regdb` with ``settings``.

    Raises:
        ValueError: unknown ``dataset_format`` (expected "sysu_mm01" or "regdb"); features that
            are NaN or infinite (names the images).
    """
    features = np.asarray(features)
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1)) if features.ndim == 2 else np.zeros(0, dtype=np.int64)
    if len(bad):
        names = ", ".join(str(paths[i]) for i in bad[:3])
        raise ValueError(f"{len(bad)} feature vector(s) hold NaN or infinite values (e.g. {names}); the model diverged or the features file is damaged")
    if dataset_format == SYSU_MM01:
        indoor = None if settings.sysu_indoor_id_file is None else load_sysu_id_list(settings.sysu_indoor_id_file)
        return evaluate_sysu_mm01(
            features,
            pids,
            cams,
            paths,
            modes=settings.sysu_modes,
            sampler=settings.sysu_sampler,
            n_trials=settings.sysu_n_trials,
            rand_perm_file=settings.sysu_rand_perm_file,
            indoor_ids=indoor,
            max_rank=settings.max_rank,
            rerank=settings.rerank,
        )
    if dataset_format == REGDB:
        return evaluate_regdb(features, pids, modalities, directions=settings.regdb_directions, max_rank=settings.max_rank,
                              rerank=settings.rerank)
    raise ValueError(f"unknown dataset_format {dataset_format!r}; expected {SYSU_MM01!r} or {REGDB!r}")
