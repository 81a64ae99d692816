"""AlignGAN's identity-aligned batches (official ``UniformSampler``) and its pixel normalisation.

Source: the official code (wangguanan/AlignGAN ``tools/data_loader/loader.py``), as this
project's reference notes describe it (``aligngan-and-baselines.md`` §1.4).

Batches (official ``UniformSampler``): the identities with both real modalities are shuffled
once per pass; a GAN batch takes 4 identities x 4 images and an IDE batch 18 x 4, from each
modality; the visible and the infrared batch hold **the same identities in the same order**
(the official loaders share seeds), which the joint discriminator's wrong pairs and the
cross-modality triplets rely on. A pass ends when fewer than P identities remain
(``drop_last``). Images are drawn without replacement when an identity has at least K of
its modality, with replacement otherwise. The two batch kinds are separate streams.

Ours: batches are a pure function of ``(seed, stream, batch number)`` (numpy ``default_rng``),
and so are each batch's flips, so a resumed run draws exactly what an uninterrupted one
draws. The official sampler uses Python's ``random`` and numpy's global RNG.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Official Normalize(mean=0.5, std=0.5): the pixel networks' [-1, 1].
GAN_MEAN = (0.5, 0.5, 0.5)
GAN_STD = (0.5, 0.5, 0.5)


class IdentityAlignedSampler:
    """Identity-aligned visible and infrared batches of ``P`` identities x ``K`` images (official ``UniformSampler``).

    Batch ``k`` of a stream is a pure function of ``(seed, stream, k)``: pass ``e = k // n``
    (``n`` = identities // P, the batches of one pass) shuffles the identities with
    ``default_rng([seed, stream, e])``; batch ``k`` takes identities ``P (k mod n)`` onwards of
    that order, and from each modality ``K`` of each identity's rows (without replacement when
    it has ``K`` or more, else with), drawn from ``default_rng([seed, stream, k, modality])``.
    So the number of batches drawn is the sampler's whole state.

    Args:
        visible_rows, infrared_rows: per identity (in label order), the cache rows of its real
            visible / infrared images (each non-empty).
        identities: ``P``; instances: ``K``; seed; stream: which batch kind (separate streams).

    Raises:
        ValueError: fewer identities than ``P``.
    """

    def __init__(
        self,
        visible_rows: Sequence[np.ndarray],
        infrared_rows: Sequence[np.ndarray],
        *,
        identities: int,
        instances: int,
        seed: int,
        stream: int,
    ) -> None:
        if len(visible_rows) != len(infrared_rows):
            raise ValueError("visible_rows and infrared_rows must list the same identities")
        if len(visible_rows) < identities:
            raise ValueError(f"need at least {identities} identities with both modalities per batch, have {len(visible_rows)}")
        self.pools = (list(visible_rows), list(infrared_rows))
        self.identities, self.instances = int(identities), int(instances)
        self.seed, self.stream = int(seed), int(stream)
        self.batches_per_pass = len(visible_rows) // self.identities

    def batch(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batch ``k``: ``(visible rows [P K], infrared rows [P K], labels [P K])``, identity by identity."""
        epoch, b = divmod(int(k), self.batches_per_pass)
        order = np.random.default_rng([self.seed, self.stream, epoch]).permutation(len(self.pools[0]))
        ids = order[b * self.identities : (b + 1) * self.identities]
        out = []
        for modality, pools in enumerate(self.pools):
            rng = np.random.default_rng([self.seed, self.stream, int(k), modality])
            rows = [rng.choice(pools[i], self.instances, replace=len(pools[i]) < self.instances) for i in ids]
            out.append(np.concatenate(rows).astype(np.int64))
        return out[0], out[1], np.repeat(ids, self.instances).astype(np.int64)

    def flip_seed(self, k: int, modality: int) -> int:
        """Seed of the augmentation draws of batch ``k``'s ``modality`` half."""
        return int(np.random.default_rng([self.seed, self.stream, int(k), modality, 1]).integers(2**62))
