"""Identity-balanced cross-modality batch sampler for re-ID training.

Every batch holds ``P`` identities and, for each, ``K`` visible and ``K`` thermal images, so
that the cross-modality top-ranking loss (CE²L) has positives and negatives of the other
modality for every anchor. When the training rows include modality-converted images (CE²L),
the ``K`` images per modality are real ones and ``K_c`` converted images per modality come
in addition, so converted images never crowd real ones out of a batch. The sampler yields
lists of dataset positions and is meant as a ``DataLoader(batch_sampler=...)``.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np

from rgbir_reid.data.records import MODALITY_CODE, THERMAL, VISIBLE


class CrossModalityIdentitySampler:
    """Batches of ``P`` identities x (``K`` visible + ``K`` thermal [+ ``K_c`` converted of each]) images, seeded per epoch.

    Args:
        pids: identity of each dataset position, int ``[N]`` (position ``i`` is what
            ``dataset[i]`` returns, e.g. ``CacheDataset.meta["pid"][dataset.indices]``).
        modalities: modality the pixels of each position show, ``[N]``, 0 visible / 1 thermal.
        num_identities: ``P``, identities per batch.
        num_instances: ``K``, images per identity *and* modality (a batch has ``2 P K`` images).
        seed: base seed; epoch ``e`` draws from ``np.random.default_rng([seed, e])``, so the
            batches of an epoch do not depend on what earlier epochs drew (exact resume).
        batches_per_epoch: batches per epoch; ``None`` gives ``ceil(N / (2 P (K + K_c)))`` so
            one epoch shows about as many images as there are positions.
        converted: bool ``[N]``, marks modality-converted positions (``None``: all real).
        num_converted_instances: ``K_c``, converted images per identity and modality, drawn
            in addition to the ``K`` real ones (only when ``converted`` marks any position).

    Per identity and modality, the ``K`` images come from its real positions and the ``K_c``
    from its converted ones; when one kind is missing (an identity seen by no infrared
    camera has only converted thermal images), the other kind of the same modality stands
    in. A batch therefore holds ``2 P (K + K_c)`` images when converted positions exist and
    ``2 P K`` otherwise, in the order identity by identity: real visible, real thermal,
    converted visible, converted thermal.

    Identities lacking one modality (of either kind) cannot form cross-modality pairs and are
    left out (``skipped_identities`` lists them). Images are drawn without replacement within
    a pool when it has enough of them, with replacement otherwise. Identities are visited in
    a fresh random order, ``P`` distinct ones per batch.

    Raises:
        ValueError: if the arrays differ in length, ``P`` or ``K`` is < 1, ``K_c`` < 0, or
            fewer than ``P`` identities have both modalities.
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
        converted: Sequence[bool] | np.ndarray | None = None,
        num_converted_instances: int = 0,
    ) -> None:
        pids = np.asarray(pids, dtype=np.int64)
        modalities = np.asarray(modalities, dtype=np.int64)
        converted = np.zeros(len(pids), dtype=bool) if converted is None else np.asarray(converted, dtype=bool)
        if pids.shape != modalities.shape or pids.shape != converted.shape or pids.ndim != 1:
            raise ValueError(
                f"pids {pids.shape}, modalities {modalities.shape} and converted {converted.shape} "
                "must be 1-D of equal length"
            )
        if num_identities < 1 or num_instances < 1 or num_converted_instances < 0:
            raise ValueError(
                "num_identities and num_instances must be >= 1 and num_converted_instances >= 0, got "
                f"{num_identities}, {num_instances}, {num_converted_instances}"
            )
        self.num_identities = int(num_identities)
        self.num_instances = int(num_instances)
        self.num_converted_instances = int(num_converted_instances) if converted.any() else 0
        self.seed = int(seed)
        self.epoch = 0
        # Draws per identity, in batch order: (modality, prefer converted, count).
        self._draws = [(m, False, self.num_instances) for m in (VISIBLE, THERMAL)]
        if self.num_converted_instances:
            self._draws += [(m, True, self.num_converted_instances) for m in (VISIBLE, THERMAL)]
        self.pools: dict[int, dict[tuple[str, bool], np.ndarray]] = {}
        self.skipped_identities: list[int] = []
        for pid in np.unique(pids):
            pool = {}
            for m in (VISIBLE, THERMAL):
                of_m = (pids == pid) & (modalities == MODALITY_CODE[m])
                real, conv = np.flatnonzero(of_m & ~converted), np.flatnonzero(of_m & converted)
                # A missing kind is stood in for by the other kind of the same modality.
                pool[m, False] = real if len(real) else conv
                pool[m, True] = conv if len(conv) else real
            if all(len(rows) for rows in pool.values()):
                self.pools[int(pid)] = pool
            else:
                self.skipped_identities.append(int(pid))
        if len(self.pools) < self.num_identities:
            raise ValueError(
                f"only {len(self.pools)} identities have both visible and thermal images, "
                f"fewer than num_identities={self.num_identities} per batch"
            )
        self.identities = np.array(sorted(self.pools), dtype=np.int64)
        batch = self.batch_size
        self.batches_per_epoch = (
            int(batches_per_epoch) if batches_per_epoch is not None else max(1, math.ceil(len(pids) / batch))
        )

    @property
    def batch_size(self) -> int:
        """Images per batch: ``2 P (K + K_c)`` (``K_c`` = 0 without converted positions)."""
        return 2 * self.num_identities * (self.num_instances + self.num_converted_instances)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next ``iter()`` yields (0-based)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.batches_per_epoch

    @staticmethod
    def _draw(rng: np.random.Generator, rows: np.ndarray, count: int) -> np.ndarray:
        return rng.choice(rows, size=count, replace=len(rows) < count)

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
                for modality, prefer_converted, count in self._draws:
                    batch.extend(self._draw(rng, self.pools[pid][modality, prefer_converted], count).tolist())
            yield batch
