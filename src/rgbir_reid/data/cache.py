"""The per-trial HDF5 training cache: real and modality-converted images, uint8.

Layout (schema version 1), one file per dataset trial (``results/{dataset}/trial{t}/cache.h5``):

=================  ===================  ====================================================
dataset            dtype / shape        meaning
=================  ===================  ====================================================
``images``         uint8 ``[N,H,W,3]``  RGB channel order; chunked one image per chunk
``pid``            int64 ``[N]``        identity as the dataset numbers it
``camera``         int64 ``[N]``        camera of the *source* image
``modality``       int8 ``[N]``         modality the pixels show: 0 visible, 1 thermal
``kind``           int8 ``[N]``         0 real, 1 converted (CycleGAN output)
``source_index``   int64 ``[N]``        row of the trial's training records the pixels come from
``path``           utf-8 str ``[N]``    source image file
=================  ===================  ====================================================

A converted RGB->IR image therefore has ``modality = 1`` and ``kind = 1``; it shares
``source_index`` with the real RGB image it was made from.

File attributes (provenance): ``schema_version``, ``generator_sha256`` (sha256 of the
generator checkpoint, ``""`` when the cache holds real images only), ``config_hash``
(hash of the settings that shaped the cache), ``image_height``, ``image_width``,
``rgbir_reid_version``.

The file is written under a temporary name and renamed at the end, so a killed job
never leaves a file that Snakemake or a reader would take as complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from rgbir_reid import __version__
from rgbir_reid.data.records import KIND_CONVERTED, KIND_REAL, MODALITY_CODE, THERMAL, VISIBLE, ImageRecord
from rgbir_reid.data.transforms import load_image
from rgbir_reid.io import atomic_output

SCHEMA_VERSION = 1

# A converter maps a batch of uint8 images [B, H, W, 3] to converted uint8 images of the same shape.
Converter = Callable[[np.ndarray], np.ndarray]
# Which converter turns a record of a given modality into the other modality.
CONVERSION_OF = {VISIBLE: ("rgb2ir", THERMAL), THERMAL: ("ir2rgb", VISIBLE)}


def _batches(n: int, size: int) -> Iterable[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def write_cache(
    out_path: str | Path,
    records: Sequence[ImageRecord],
    image_size: tuple[int, int],
    *,
    converters: Mapping[str, Converter] | None = None,
    batch_size: int = 32,
    generator_sha256: str = "",
    config_hash: str = "",
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Decode, resize and (optionally) convert ``records`` into one HDF5 cache file.

    Args:
        out_path: destination ``.h5`` file; written under a temporary name, then renamed.
        records: the trial's training images (any order; row ``i`` becomes ``source_index = i``).
        image_size: ``(height, width)`` in pixels of every stored image.
        converters: ``{"rgb2ir": f, "ir2rgb": g}``; each maps uint8 ``[B, H, W, 3]`` to the same
            shape in the other modality. ``None`` stores real images only.
        batch_size: images decoded and converted at once.
        generator_sha256: sha256 of the generator checkpoint behind ``converters`` (provenance).
        config_hash: hash of the settings that shaped the cache (provenance).
        progress: called with the number of images just written (e.g. ``tqdm.update``).

    Returns:
        ``out_path``.

    Raises:
        DatasetFormatError: if an image cannot be decoded (names the file); nothing is left at ``out_path``.
        KeyError: if a needed converter is missing from ``converters``.
    """
    h, w = int(image_size[0]), int(image_size[1])
    n_real = len(records)
    n = n_real * (2 if converters else 1)
    with atomic_output(out_path) as tmp, h5py.File(tmp, "w") as f:
        images = f.create_dataset("images", (n, h, w, 3), dtype=np.uint8, chunks=(1, h, w, 3))
        meta = {
            "pid": np.empty(n, np.int64),
            "camera": np.empty(n, np.int64),
            "modality": np.empty(n, np.int8),
            "kind": np.empty(n, np.int8),
            "source_index": np.empty(n, np.int64),
        }
        paths: list[str] = [""] * n
        for sl in _batches(n_real, batch_size):
            batch = records[sl]
            real = np.stack([load_image(r.path, (h, w)) for r in batch])
            images[sl] = real
            for i, r in zip(range(sl.start, sl.stop), batch):
                meta["pid"][i], meta["camera"][i] = r.pid, r.camera
                meta["modality"][i], meta["kind"][i] = MODALITY_CODE[r.modality], KIND_REAL
                meta["source_index"][i], paths[i] = i, r.path
            if converters:
                # Row n_real + i holds the conversion of row i, so the converted half of a batch is
                # one contiguous block: gather it in memory and write it with one slice.
                fake = np.empty_like(real)
                for modality, (name, _target) in CONVERSION_OF.items():
                    idx = np.flatnonzero([r.modality == modality for r in batch])
                    if len(idx):
                        fake[idx] = converters[name](real[idx])
                images[n_real + sl.start : n_real + sl.stop] = fake
            if progress is not None:
                progress(len(batch))
        if converters:
            # The converted half describes the same sources as the real half, in the other modality.
            real_rows, fake_rows = slice(0, n_real), slice(n_real, n)
            for key in ("pid", "camera", "source_index"):
                meta[key][fake_rows] = meta[key][real_rows]
            meta["modality"][fake_rows] = 1 - meta["modality"][real_rows]  # codes 0 and 1 swap
            meta["kind"][fake_rows] = KIND_CONVERTED
            paths[fake_rows] = paths[real_rows]
        for key, arr in meta.items():
            f.create_dataset(key, data=arr)
        f.create_dataset("path", data=np.array(paths, dtype=object), dtype=h5py.string_dtype("utf-8"))
        f.attrs.update(
            schema_version=SCHEMA_VERSION,
            generator_sha256=generator_sha256,
            config_hash=config_hash,
            image_height=h,
            image_width=w,
            rgbir_reid_version=__version__,
        )
    return Path(out_path)


def read_cache_attrs(path: str | Path) -> dict:
    """The provenance attributes of a cache file as a plain dict."""
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}


def cache_is_current(path: str | Path, *, generator_sha256: str, config_hash: str) -> bool:
    """True if ``path`` exists, has this schema version, and was made by this generator and config."""
    path = Path(path)
    if not path.exists():
        return False
    attrs = read_cache_attrs(path)
    return (
        attrs.get("schema_version") == SCHEMA_VERSION
        and attrs.get("generator_sha256") == generator_sha256
        and attrs.get("config_hash") == config_hash
    )


class CacheDataset(Dataset):
    """A map-style dataset over a cache file, safe to share with DataLoader workers.

    The metadata arrays ``meta["pid"]``, ``["camera"]``, ``["modality"]`` and ``["kind"]`` (each
    ``[N]``, every row of the file) are read into memory at construction; pixels are read lazily
    through one ``h5py.File`` handle per process (a handle opened before ``fork`` is never
    reused in a worker).

    Args:
        path: cache file written by :func:`write_cache`.
        indices: optional subset of rows (e.g. real images only); default all rows.
        transform: maps a uint8 ``[H, W, 3]`` array to what ``__getitem__`` returns as ``"image"``;
            default a uint8 tensor ``[3, H, W]``.

    Items are dicts ``{"image", "pid", "camera", "modality", "kind", "index"}``; ``index`` is the
    row in the file.
    """

    def __init__(
        self,
        path: str | Path,
        indices: Sequence[int] | np.ndarray | None = None,
        transform: Callable[[np.ndarray], torch.Tensor] | None = None,
    ) -> None:
        self.path = str(path)
        with h5py.File(self.path, "r") as f:
            self.meta = {k: f[k][()] for k in ("pid", "camera", "modality", "kind")}
            n = f["images"].shape[0]
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        self.transform = transform
        self._file: h5py.File | None = None
        self._images_dataset: h5py.Dataset | None = None
        self._pid_of_handle = -1

    def __len__(self) -> int:
        return len(self.indices)

    def _images(self) -> h5py.Dataset:
        if self._file is None or self._pid_of_handle != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._images_dataset = self._file["images"]
            self._pid_of_handle = os.getpid()
        return self._images_dataset

    def __getitem__(self, i: int) -> dict:
        row = int(self.indices[i])
        img = self._images()[row]
        image = self.transform(img) if self.transform is not None else torch.from_numpy(img).permute(2, 0, 1)
        return {
            "image": image,
            "pid": int(self.meta["pid"][row]),
            "camera": int(self.meta["camera"][row]),
            "modality": int(self.meta["modality"][row]),
            "kind": int(self.meta["kind"][row]),
            "index": row,
        }

    def __getstate__(self) -> dict:
        # h5py handles cannot be pickled (spawned workers); each process reopens its own.
        state = self.__dict__.copy()
        state["_file"], state["_images_dataset"], state["_pid_of_handle"] = None, None, -1
        state.pop("_pixels", None)  # CacheBatchDataset's in-memory copy: each worker reads its own
        return state


# Caches with at most this many bytes of pixels are read into memory by CacheBatchDataset.
IN_MEMORY_BYTES = 1 << 30


class CacheBatchDataset(CacheDataset):
    """A cache read a batch at a time: ``dataset[[r0, r1, ...]]`` is one whole batch.

    Meant as ``DataLoader(dataset, sampler=batch_sampler, batch_size=None)``, where each item
    the sampler yields is a list of dataset positions (as
    :class:`~rgbir_reid.data.samplers.CrossModalityIdentitySampler` yields). The pixels stay
    uint8 and untransformed, so augmentation can run on the whole batch on the training
    device (:class:`rgbir_reid.data.transforms.BatchAugmentation`); rows may repeat. A cache
    whose pixels fit in ``in_memory_bytes`` (default :data:`IN_MEMORY_BYTES`, 1 GiB; the demo's
    is ~120 MB) is read whole at the first batch and indexed in memory (reading 256 rows one by
    one took ~50 ms, a tenth of a demo training step on one thread); a larger one is read row
    by row (h5py's fancy indexing over a chunk-per-image file is much slower).

    Constructed as :class:`CacheDataset` (``path``, optional ``indices``: positions index into
    them); ``transform`` is not used. Items are dicts of tensors over the ``B`` positions asked for: ``"image"`` uint8
    ``[B, 3, H, W]``, ``"pid"``, ``"camera"``, ``"modality"``, ``"kind"``, ``"index"`` (the
    row in the file), each int64 ``[B]``.
    """

    in_memory_bytes: int = IN_MEMORY_BYTES
    _pixels: np.ndarray | None = None  # the in-memory copy, and the process that read it
    _pixels_pid: int = -1

    def __getitem__(self, positions: Sequence[int]) -> dict:  # type: ignore[override]
        rows = self.indices[np.asarray(positions, dtype=np.int64)]
        images = self._images()
        if images.size * images.dtype.itemsize <= self.in_memory_bytes:
            if self._pixels is None or self._pixels_pid != os.getpid():
                self._pixels, self._pixels_pid = images[()], os.getpid()
            pixels = self._pixels[rows]
        else:
            pixels = np.empty((len(rows), *images.shape[1:]), dtype=np.uint8)
            for i, row in enumerate(rows):
                pixels[i] = images[int(row)]
        batch = {"image": torch.from_numpy(pixels).permute(0, 3, 1, 2)}
        for key in ("pid", "camera", "modality", "kind"):
            batch[key] = torch.from_numpy(self.meta[key][rows].astype(np.int64))
        batch["index"] = torch.from_numpy(rows)
        return batch
