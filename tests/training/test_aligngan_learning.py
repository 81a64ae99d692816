"""AlignGAN's training does what it must: a short learning check of the pixel module, and
targeted checks of the wiring that a learning test on rank-1 could not catch within the
suite's budget (an AlignGAN that learns the demo takes minutes: docs/methods/aligngan.md).

Each test fails under one deliberate breakage of the training loop (checked by hand, the
figures in docs/methods/aligngan.md, "Breakages"):

1. fake infrared detached from the task losses -> ``test_task_terms_train_g_rgb2ir_through_the_fake_infrared``;
2. the joint discriminator's "wrong identity" pairs drawn from the same identity ->
   ``test_wrong_identity_pairs_of_the_joint_discriminator_show_another_identity``;
3. ``G_rgb2ir`` replaced by the identity map -> ``test_the_encoder_sees_g_rgb2ir_outputs_not_the_visible_images``;
4. visible and infrared batches whose identities are not aligned ->
   ``test_every_batch_holds_the_same_identities_in_both_modalities``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import rgbir_reid.losses.aligngan as aligngan_losses
from rgbir_reid.data.cache import CacheBatchDataset, write_cache
from rgbir_reid.models.aligngan import AlignGAN, PixelGenerator
from rgbir_reid.training import aligngan as aligngan_training
from rgbir_reid.training.aligngan import AlignGANSettings, build_model_from_settings, load_aligngan_model, train_aligngan
from reid_tiny import sample_records

pytestmark = pytest.mark.usefixtures("shared_data")

TINY = AlignGANSettings(
    backbone="shufflenet_v2_x0_5", pretrained="none", ngf=8, n_blocks=1, ndf=8, n_disc_layers=2,
    bottleneck_dim=8, embedding_dim=8, image_size=(64, 32), reid_size=(32, 16),
    gan_identities=2, gan_instances=2, ide_identities=2, ide_instances=2,
    feature_warmup_iterations=0, pixel_warmup_iterations=0, joint_iterations=2,
    log_every=1, checkpoint_every=1000,
)  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_cache(tmp_path_factory.mktemp("cache") / "cache.h5", sample_records(), (64, 32))


@pytest.fixture
def recorded_batches(monkeypatch):
    """Every batch the training loop draws: ``(stream, visible rows, infrared rows, labels)``."""
    drawn = []
    original = aligngan_training.IdentityAlignedSampler.batch

    def batch(self, k):
        out = original(self, k)
        drawn.append((self.stream, *out))
        return out

    monkeypatch.setattr(aligngan_training.IdentityAlignedSampler, "batch", batch)
    return drawn


def test_the_encoder_sees_g_rgb2ir_outputs_not_the_visible_images(cache, tmp_path, monkeypatch):
    # In both joint steps the encoder's "fake infrared" input is G_rgb2ir's output of the
    # visible batch (not the visible images themselves, as with an identity-map G_rgb2ir).
    generated, encoded, visible_batches = [], [], []
    original_forward = PixelGenerator.forward
    original_encode = AlignGAN.encode

    def forward(self, x):
        out = original_forward(self, x)
        generated.append((self, x, out))
        return out

    def encode(self, images):
        encoded.append(images)
        return original_encode(self, images)

    monkeypatch.setattr(PixelGenerator, "forward", forward)
    monkeypatch.setattr(AlignGAN, "encode", encode)
    train_aligngan(cache, tmp_path / "run", replace(TINY, joint_iterations=1), device="cpu", seed=0)
    fake_ir = [(gen, x, out) for gen, x, out in generated if any(out is e for e in encoded)]
    # One from the feature step (IDE batch) and one from the pixel step (GAN batch).
    assert len(fake_ir) == 2, "the encoder never sees a generator output"
    g_rgb2ir = {id(gen) for gen, _, _ in fake_ir}
    assert len(g_rgb2ir) == 1  # the same generator, G_rgb2ir
    for _, x, out in fake_ir:
        assert x.shape == out.shape and not torch.equal(x, out)
        assert not any(x is e for e in encoded), "the visible images themselves reach the encoder"


def test_task_terms_train_g_rgb2ir_through_the_fake_infrared(cache, tmp_path):
    # The pixel step's triplet and identity terms reach G_rgb2ir only through the encoder's
    # features of the fake infrared images: with them off, G_rgb2ir ends up elsewhere; were
    # the fake infrared detached before the encoder, it would end up the same.
    settings = replace(TINY, pixel_warmup_iterations=1, joint_iterations=0)
    with_terms = load_aligngan_model(train_aligngan(cache, tmp_path / "with", settings, device="cpu", seed=0))[0]
    without = replace(settings, lambda_pixel_triplet=0.0, lambda_pixel_cls=0.0)
    without_terms = load_aligngan_model(train_aligngan(cache, tmp_path / "without", without, device="cpu", seed=0))[0]
    a, b = with_terms.G_rgb2ir.state_dict(), without_terms.G_rgb2ir.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if "weight" in k), "the task terms do not reach G_rgb2ir"
    # G_ir2rgb gets no gradient from them (they see only G_rgb2ir's output and real infrared).
    c, d = with_terms.G_ir2rgb.state_dict(), without_terms.G_ir2rgb.state_dict()
    assert all(torch.equal(c[k], d[k]) for k in c)


def test_wrong_identity_pairs_of_the_joint_discriminator_show_another_identity(cache, tmp_path, recorded_batches,
                                                                               monkeypatch):
    rolled = []
    original = aligngan_losses.roll_identities

    def roll(x, instances):
        out = original(x, instances)
        rolled.append((x.detach().clone(), out.detach().clone()))
        return out

    monkeypatch.setattr(aligngan_losses, "roll_identities", roll)
    train_aligngan(cache, tmp_path / "run", TINY, device="cpu", seed=0)
    gan_labels = [labels for stream, _, _, labels in recorded_batches if stream == 1]
    assert len(rolled) == len(gan_labels) == TINY.joint_iterations  # one D_ir step per joint iteration
    for (x, wrong), labels in zip(rolled, gan_labels):
        # The real infrared images are distinct; find where each wrong-pair image came from.
        flat = x.flatten(1)
        for i, image in enumerate(wrong.flatten(1)):
            source = int(torch.nonzero((flat == image).all(1))[0])
            assert labels[source] != labels[i], f"wrong pair {i} shows its own identity {labels[i]}"


def test_every_batch_holds_the_same_identities_in_both_modalities(cache, tmp_path, recorded_batches, monkeypatch):
    # What the loop feeds the losses: the labels of the visible (fake infrared) and of the
    # infrared half are one tensor, so they must be the identities of both halves' images.
    meta = CacheBatchDataset(cache).meta
    seen_pids = []
    original_getitem = CacheBatchDataset.__getitem__

    def getitem(self, rows):
        seen_pids.append(self.meta["pid"][np.asarray(rows)])
        return original_getitem(self, rows)

    monkeypatch.setattr(CacheBatchDataset, "__getitem__", getitem)
    model_path = train_aligngan(cache, tmp_path / "run", replace(TINY, feature_warmup_iterations=1), device="cpu", seed=0)
    saved = torch.load(model_path, weights_only=True)["pids"]
    assert len(recorded_batches) == 1 + 2 * TINY.joint_iterations  # feature warm-up IDE, then IDE + GAN per joint
    assert len(seen_pids) == 2 * len(recorded_batches)  # each batch reads its visible, then its infrared rows
    for b, (_, rows_v, rows_i, labels) in enumerate(recorded_batches):
        assert (meta["modality"][rows_v] == 0).all() and (meta["modality"][rows_i] == 1).all()
        expected = np.array([saved[label] for label in labels])
        assert np.array_equal(seen_pids[2 * b], expected) and np.array_equal(seen_pids[2 * b + 1], expected)
