"""Identity-balanced cross-modality batch sampler for re-ID training.

Every batch holds ``P`` identities and, for each, ``K`` visible and ``K`` thermal images, so
that the cross-modality top-ranking loss (CE²L) has positives and negatives of the other
modality for every anchor. The sampler yields lists of dataset positions and is meant as a
``DataLoader(batch_sampler=...)``.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np

from rgbir_reid.data.records import MODALITY_CODE, THERMAL, VISIBLE


class CrossModalityIdentitySampler:
    """Batches of ``P`` identities x (``K`` visible + ``K`` thermal) images, seeded per epoch.

    Args:
        pids: identity of each dataset position, int ``[N]`` (position ``i`` is what
            ``dataset[i]`` returns, e.g. ``CacheDataset.meta["pid"][dataset.indices]``).
        modalities: modality the pixels of each position show, ``[N]``, 0 visible / 1 thermal.
        num_identities: ``P``, identities per batch.
        num_instances: ``K``, images per identity *and* modality (a batch has ``2 P K`` images).
        seed: base seed; epoch ``e`` draws from ``np.random.default_rng([seed, e])``, so the
            batches of an epoch do not depend on what earlier epochs drew (exact resume).
        batches_per_epoch: batches per epoch; ``None`` gives ``ceil(N / (2 P K))`` so one
            epoch shows about as many images as there are positions.

    Identities lacking one modality cannot form cross-modality pairs and are left out
    (``skipped_identities`` lists them). Images are drawn without replacement within an
    identity's modality when it has at least ``K`` of them, with replacement otherwise.
    Identities are visited in a fresh random order, ``P`` distinct ones per batch.

    Raises:
        ValueError: if the arrays differ in length, ``P`` or ``K`` is < 1, or fewer than ``P``
            identities have both modalities.
    """

    def __init__(
        self,
        pids: Sequence[int] | np.ndarray,
        modalities: Sequence[int] | np.ndarray,
        *,
        num_identities: int,
        num_instances: int,
        seed: int,
        batches_per_epoch: int | None = None,
    ) -> None:
        pids = np.asarray(pids, dtype=np.int64)
        modalities = np.asarray(modalities, dtype=np.int64)
        if pids.shape != modalities.shape or pids.ndim != 1:
            raise ValueError(f"pids {pids.shape} and modalities {modalities.shape} must be 1-D of equal length")
        if num_identities < 1 or num_instances < 1:
            raise ValueError(f"num_identities and num_instances must be >= 1, got {num_identities}, {num_instances}")
        self.num_identities = int(num_identities)
        self.num_instances = int(num_instances)
        self.seed = int(seed)
        self.epoch = 0
        v, t = MODALITY_CODE[VISIBLE], MODALITY_CODE[THERMAL]
        self.pools: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.skipped_identities: list[int] = []
        for pid in np.unique(pids):
            rows_v = np.flatnonzero((pids == pid) & (modalities == v))
            rows_t = np.flatnonzero((pids == pid) & (modalities == t))
            if len(rows_v) and len(rows_t):
                self.pools[int(pid)] = (rows_v, rows_t)
            else:
                self.skipped_identities.append(int(pid))
        if len(self.pools) < self.num_identities:
            raise ValueError(
                f"only {len(self.pools)} identities have both visible and thermal images, "
                f"fewer than num_identities={self.num_identities} per batch"
            )
        self.identities = np.array(sorted(self.pools), dtype=np.int64)
        batch = 2 * self.num_identities * self.num_instances
        self.batches_per_epoch = (
            int(batches_per_epoch) if batches_per_epoch is not None else max(1, math.ceil(len(pids) / batch))
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next ``iter()`` yields (0-based)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def _draw(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        return rng.choice(rows, size=self.num_instances, replace=len(rows) < self.num_instances)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order: list[int] = []
        for _ in range(self.batches_per_epoch):
            chosen: list[int] = []
            while len(chosen) < self.num_identities:
                if not order:
                    order = rng.permutation(self.identities).tolist()
                pid = order.pop()
                # A refilled order may repeat an id already in this batch; that draw is dropped.
                if pid not in chosen:
                    chosen.append(pid)
            batch: list[int] = []
            for pid in chosen:
                rows_v, rows_t = self.pools[pid]
                batch.extend(self._draw(rng, rows_v).tolist())
                batch.extend(self._draw(rng, rows_t).tolist())
            yield batch
