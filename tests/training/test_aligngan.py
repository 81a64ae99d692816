"""AlignGAN training on a tiny cache of real SYSU-MM01 images: stages, fresh D_rgb, exact resume, settings."""

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from rgbir_reid.conversion import save_generators
from rgbir_reid.data.cache import CacheBatchDataset, write_cache
from rgbir_reid.models.cyclegan import build_cyclegan
from rgbir_reid.training.aligngan import (
    STAGES,
    AlignGANSettings,
    IdentityAlignedSampler,
    aligngan_features,
    build_model_from_settings,
    load_aligngan_model,
    train_aligngan,
    use_norm_statistics,
)
from reid_tiny import sample_records

# Stages of 2 / 2 / 3 iterations, lr decay after the joint stage's second iteration.
TINY = AlignGANSettings(
    backbone="shufflenet_v2_x0_5",
    pretrained="none",
    ngf=4,
    n_blocks=1,
    ndf=4,
    bottleneck_dim=8,
    embedding_dim=8,
    image_size=(64, 32),
    reid_size=(32, 16),
    gan_identities=2,
    gan_instances=2,
    ide_identities=2,
    ide_instances=2,
    feature_warmup_iterations=2,
    pixel_warmup_iterations=2,
    joint_iterations=3,
    feature_lr=0.01,
    lr_decay_iterations=(2,),
    log_every=1,
    checkpoint_every=1,
)
A, B = TINY.feature_warmup_iterations, TINY.feature_warmup_iterations + TINY.pixel_warmup_iterations


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_cache(tmp_path_factory.mktemp("cache") / "cache.h5", sample_records(), (64, 32))


def params(state: dict, prefix: str, names: set[str]) -> dict:
    return {k: v.clone() for k, v in state.items() if k.startswith(prefix) and k[len(prefix):] in names}


@pytest.fixture(scope="module")
def reference(cache, tmp_path_factory):
    """An uninterrupted run, with the parameters of each checkpoint (one per iteration)."""
    out = tmp_path_factory.mktemp("reference")
    model, discs = build_model_from_settings(TINY, 5, seed=0)
    d_names = {n for n, _ in discs.named_parameters()}
    m_names = {n for n, _ in model.named_parameters()}
    snapshots = {0: {"discs": params(discs.state_dict(), "", d_names), "model": params(model.state_dict(), "", m_names)}}
    stages = {}

    def record(done, info):
        ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
        assert ckpt["iteration"] == done
        snapshots[done] = {"discs": params(ckpt["discriminators"], "", d_names), "model": params(ckpt["model"], "", m_names)}
        stages[done] = info["stage"]

    path = train_aligngan(cache, out, TINY, device="cpu", seed=0, on_iteration_end=record)
    return path, snapshots, stages


def same(a: dict, b: dict, prefix: str) -> bool:
    keys = [k for k in a if k.startswith(prefix)]
    assert keys, prefix
    return all(torch.equal(a[k], b[k]) for k in keys)


def test_stages_switch_at_the_configured_iterations(reference):
    path, _, stages = reference
    assert [stages[i] for i in range(1, 8)] == ["feature_warmup"] * 2 + ["pixel_warmup"] * 2 + ["joint"] * 3
    frame = pd.read_csv(path.parent / "losses.csv")
    assert frame["iteration"].tolist() == list(range(1, 8)) and frame["stage"].tolist() == [stages[i] for i in range(1, 8)]
    # lr x0.1 from joint iteration 2 on (global iteration 6, the 7th row); none in the warm-ups
    assert frame["lr_pixel"].tolist() == pytest.approx([2e-4] * 6 + [2e-5])
    assert frame["lr_feature"].tolist() == pytest.approx([0.01] * 6 + [0.001])
    # each stage logs its own terms only
    warm = frame[frame["stage"] == "feature_warmup"]
    assert warm["feat_cls_real_ir"].notna().all() and warm["G_total"].isna().all() and warm["feat_gan"].isna().all()
    pix = frame[frame["stage"] == "pixel_warmup"]
    assert pix["G_total"].notna().all() and pix["D_ir"].notna().all() and pix["feat_total"].isna().all()
    joint = frame[frame["stage"] == "joint"]
    assert joint.drop(columns=["stage"]).notna().all().all()
    assert (path.parent / "losses.png").stat().st_size > 0 and (path.parent / "losses.pdf").stat().st_size > 0


def test_what_each_stage_trains_and_a_fresh_d_rgb(reference):
    _, snap, _ = reference
    d = {i: s["discs"] for i, s in snap.items()}
    m = {i: s["model"] for i, s in snap.items()}
    # Feature warm-up: encoder and embedder move, generators and discriminators do not.
    assert not same(m[0], m[A], "encoder.") and not same(m[0], m[A], "embedder.")
    assert same(m[0], m[A], "G_rgb2ir.") and same(d[0], d[A], "D_")
    # Pixel warm-up: generators and the warm-up discriminators move; the encoder's weights,
    # the embedder, D_rgb and D_ir do not.
    assert not same(m[A], m[B], "G_rgb2ir.") and not same(m[A], m[B], "G_ir2rgb.")
    assert not same(d[A], d[B], "D_rgb_warmup.") and not same(d[A], d[B], "D_ir_warmup.")
    assert same(m[A], m[B], "encoder.") and same(m[A], m[B], "embedder.")
    assert same(d[0], d[B], "D_rgb.") and same(d[0], d[B], "D_ir.")
    # Joint: D_rgb starts from its fresh initial weights and trains; the warm-up ones stop.
    assert not same(d[B], d[B + 1], "D_rgb.") and not same(d[B], d[B + 1], "D_ir.")
    assert same(d[B], d[7], "D_rgb_warmup.") and same(d[B], d[7], "D_ir_warmup.")
    assert not same(m[B], m[B + 1], "encoder.") and not same(m[B], m[B + 1], "G_rgb2ir.")


def test_kill_and_resume_in_every_stage_matches_an_uninterrupted_run(cache, reference, tmp_path, caplog):
    ref_path, _, _ = reference
    out = tmp_path / "resumed"
    logger = logging.getLogger("test_aligngan_resume")

    def stop_at(n):
        def callback(done, info):
            if done == n:
                raise Stop
        return callback

    # (settings, iteration to stop after, iteration the next call resumes from)
    plan = [
        (TINY, 1, 1),  # feature warm-up
        (replace(TINY, checkpoint_every=2), 3, 2),  # pixel warm-up; resumes right at the A -> B boundary
        (replace(TINY, checkpoint_every=2), 5, 4),  # joint; resumes right at the B -> C boundary
        (TINY, 6, 6),  # joint, after the lr decay
    ]
    expected_start = 0
    for settings, stop, resume_from in plan:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="test_aligngan_resume"), pytest.raises(Stop):
            train_aligngan(cache, out, settings, device="cpu", seed=0, logger=logger, on_iteration_end=stop_at(stop))
        if expected_start:
            assert f"resuming from iteration {expected_start} of 7" in caplog.text
        assert not (out / "model.pt").exists()
        assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["iteration"] == resume_from
        expected_start = resume_from
    with caplog.at_level(logging.INFO, logger="test_aligngan_resume"):
        path = train_aligngan(cache, out, TINY, device="cpu", seed=0, logger=logger)
    assert "resuming from iteration 6 of 7" in caplog.text

    ref = torch.load(ref_path, weights_only=True)["state_dict"]
    res = torch.load(path, weights_only=True)["state_dict"]
    assert ref.keys() == res.keys()
    assert [k for k in ref if not torch.equal(ref[k], res[k])] == []
    ref_ckpt = torch.load(ref_path.parent / "checkpoints" / "last.pt", weights_only=True)
    res_ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(ref_ckpt["discriminators"][k], v) for k, v in res_ckpt["discriminators"].items())
    pd.testing.assert_frame_equal(pd.read_csv(ref_path.parent / "losses.csv"), pd.read_csv(out / "losses.csv"))


def test_checkpoint_of_other_settings_is_ignored_with_a_warning(cache, tmp_path, caplog):
    out = tmp_path / "run"

    def stop(done, info):
        raise Stop

    with pytest.raises(Stop):
        train_aligngan(cache, out, TINY, device="cpu", seed=0, on_iteration_end=stop)
    logger = logging.getLogger("test_aligngan_other")
    with caplog.at_level(logging.INFO, logger="test_aligngan_other"), pytest.raises(Stop):
        train_aligngan(cache, out, replace(TINY, pixel_lr=1e-3), device="cpu", seed=1, logger=logger, on_iteration_end=stop)
    assert "ignoring checkpoint" in caplog.text and "pixel_lr 0.0002 -> 0.001" in caplog.text and "seed 0 -> 1" in caplog.text
    assert "resuming" not in caplog.text


def test_checkpoint_of_other_training_code_is_ignored_saying_so(cache, tmp_path, caplog, monkeypatch):
    import rgbir_reid.training.checkpoints as checkpoints

    out = tmp_path / "run"

    def stop(done, info):
        raise Stop

    with pytest.raises(Stop):
        train_aligngan(cache, out, TINY, device="cpu", seed=0, on_iteration_end=stop)
    old = checkpoints.training_code_hash()
    monkeypatch.setattr(checkpoints, "training_code_hash", lambda: "0f1e2d3c4b5a6978")
    logger = logging.getLogger("test_aligngan_code")
    with caplog.at_level(logging.INFO, logger="test_aligngan_code"), pytest.raises(Stop):
        train_aligngan(cache, out, TINY, device="cpu", seed=0, logger=logger, on_iteration_end=stop)
    assert f"the library's training code changed ({old} -> 0f1e2d3c4b5a6978); starting over" in caplog.text
    assert "resuming" not in caplog.text


def test_model_file_and_test_features(reference, tmp_path):
    path, _, _ = reference
    model, settings = load_aligngan_model(path)
    assert settings == TINY and not model.training
    torch.manual_seed(0)
    x = torch.rand(3, 3, 64, 32) * 2 - 1
    visible = aligngan_features(model, x, 0)
    infrared = aligngan_features(model, x, 1)
    assert visible.shape == (3, 1024) and torch.allclose(visible.norm(dim=1), torch.ones(3))
    assert not torch.allclose(visible, infrared)
    # visible images are converted by G_rgb2ir (eval mode), then treated as infrared
    with torch.no_grad():
        converted = model.G_rgb2ir(x)
    assert torch.allclose(visible, aligngan_features(model, converted, 1), atol=1e-6)
    # per-image codes route each image; flip TTA sums the mirror's pooled feature
    mixed = aligngan_features(model, x, torch.tensor([0, 1, 0]))
    assert torch.allclose(mixed[[0, 2]], visible[[0, 2]], atol=1e-6) and torch.allclose(mixed[1], infrared[1], atol=1e-6)
    with torch.no_grad():
        pooled = model.encode(x).mean(dim=(2, 3)) + model.encode(x.flip(3)).mean(dim=(2, 3))
    assert torch.allclose(infrared, torch.nn.functional.normalize(pooled, dim=1), atol=1e-6)
    assert not torch.allclose(infrared, aligngan_features(model, x, 1, flip=False))
    with pytest.raises(ValueError, match="modality"):
        aligngan_features(model, x, 2)


def test_norm_statistics_running_is_official_and_per_image_uses_each_images_own(reference, tmp_path):
    path, _, _ = reference
    assert AlignGANSettings().norm_statistics == "running"
    model, _ = load_aligngan_model(path)
    state = torch.load(path, weights_only=True)
    per_image_path = tmp_path / "per_image.pt"
    torch.save({**state, "settings": {**state["settings"], "norm_statistics": "per_image"}}, per_image_path)
    per_image, settings = load_aligngan_model(per_image_path)
    assert settings.norm_statistics == "per_image"
    torch.manual_seed(1)
    x = torch.rand(2, 3, 64, 32) * 2 - 1
    with torch.no_grad():
        running_out, per_image_out = model.G_rgb2ir(x), per_image.G_rgb2ir(x)
        # Each image alone gives the same output per image (its own statistics), and the
        # generator in training mode (which always normalises per image) gives it too.
        alone = torch.cat([per_image.G_rgb2ir(x[i : i + 1]) for i in range(2)])
        per_image.G_rgb2ir.train()
        trained_mode = per_image.G_rgb2ir(x)
        per_image.G_rgb2ir.eval()
    assert torch.allclose(per_image_out, alone, atol=1e-6) and torch.allclose(per_image_out, trained_mode, atol=1e-6)
    assert not torch.allclose(running_out, per_image_out, atol=1e-3)
    # The running buffers are dropped (torch would update them from test images otherwise).
    assert any("running_mean" in k for k in model.G_rgb2ir.state_dict())
    assert not any("running" in k for k in per_image.G_rgb2ir.state_dict())
    with pytest.raises(ValueError, match="dropped"):
        use_norm_statistics(per_image, "running")
    # The test feature follows: visible images through the per-image generator.
    assert not torch.allclose(aligngan_features(model, x, 0), aligngan_features(per_image, x, 0), atol=1e-4)
    with pytest.raises(ValueError, match="norm_statistics 'batch'"):
        use_norm_statistics(model, "batch")


def test_load_rejects_other_files(tmp_path):
    other = tmp_path / "reid.pt"
    torch.save({"format": "rgbir_reid.reid_model/1", "state_dict": {}}, other)
    with pytest.raises(ValueError, match=r"reid.pt is not a 'rgbir_reid.aligngan_model/1' file"):
        load_aligngan_model(other)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="garbage.pt is not a readable checkpoint"):
        load_aligngan_model(garbage)


def test_sampler_aligns_identities_across_modalities(cache):
    meta = CacheBatchDataset(cache).meta
    pids = sorted(set(meta["pid"].tolist()))
    pools = {m: [np.flatnonzero((meta["modality"] == m) & (meta["pid"] == p)) for p in pids] for m in (0, 1)}
    sampler = IdentityAlignedSampler(pools[0], pools[1], identities=2, instances=3, seed=4, stream=0)
    assert sampler.batches_per_pass == 2  # 5 identities // 2, the last one dropped
    seen = []
    for k in range(4):
        rv, ri, labels = sampler.batch(k)
        assert (meta["modality"][rv] == 0).all() and (meta["modality"][ri] == 1).all()
        assert meta["pid"][rv].tolist() == meta["pid"][ri].tolist() == [pids[i] for i in labels]
        assert len(set(labels[::3].tolist())) == 2 and (labels.reshape(2, 3) == labels[::3, None]).all()
        seen.append(labels[::3].tolist())
        again = sampler.batch(k)
        assert all(np.array_equal(a, b) for a, b in zip((rv, ri, labels), again))  # a pure function of k
    # one pass visits distinct identities
    assert len(set(seen[0] + seen[1])) == 4 and len(set(seen[2] + seen[3])) == 4


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("backbone", "alexnet", "one of"),
        ("image_size", (60, 32), "multiple of 4"),
        ("image_size", (32, 32), "one of them >= 64"),
        ("image_size", 128, "a list"),
        ("gan_identities", 1, ">= 2"),
        ("ide_instances", 0, ">= 1"),
        ("joint_iterations", -1, ">= 0"),
        ("pixel_lr", 0.0, "> 0"),
        ("pixel_beta1", 1.0, "[0, 1)"),
        ("lr_decay_gamma", 0.0, "(0, 1]"),
        ("lambda_feature_gan", -0.1, ">= 0"),
        ("amp", "fp8", "one of"),
        ("last_stride", 3, "1 or 2"),
        ("lr_decay_iterations", (-5,), "joint-stage iterations"),
        ("norm_statistics", "batch", "one of ['running', 'per_image']"),
    ],
)
def test_settings_validation_names_the_key(key, value, expected):
    with pytest.raises(ValueError) as e:
        replace(TINY, **{key: value})
    assert f"AlignGAN setting {key}=" in str(e.value) and expected in str(e.value)


def test_settings_defaults_lists_and_dict_round_trip():
    s = AlignGANSettings()
    assert (s.feature_warmup_iterations, s.pixel_warmup_iterations, s.joint_iterations) == (5000, 10000, 10100)
    assert s.image_size == (128, 128) and s.reid_size == (384, 192) and s.lr_decay_iterations == (5000,)
    assert s.gan_identities * s.gan_instances == 16 and s.ide_identities * s.ide_instances == 72
    assert s.lr_factor(14999) == 1.0 and s.lr_factor(19999) == 1.0 and s.lr_factor(20000) == pytest.approx(0.1)
    assert [s.stage_of(i) for i in (0, 4999, 5000, 14999, 15000, 25099)] == [STAGES[0]] * 2 + [STAGES[1]] * 2 + [STAGES[2]] * 2
    listed = AlignGANSettings.from_dict({**s.to_dict(), "image_size": [64, 32]})
    assert listed.image_size == (64, 32) and AlignGANSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown AlignGAN settings \\['epochs'\\]"):
        AlignGANSettings.from_dict({"epochs": 3})


def test_feature_lr_warmup_is_off_by_default_and_linear():
    s = AlignGANSettings()
    assert s.feature_lr_warmup_iterations == 0  # official: no warm-up
    assert [s.feature_lr_factor(i) for i in (0, 14999, 20000)] == [s.lr_factor(i) for i in (0, 14999, 20000)]
    w = replace(s, feature_lr_warmup_iterations=4)
    assert [w.feature_lr_factor(i) for i in range(6)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    assert w.lr_factor(0) == 1.0  # the pixel module's lrs do not warm up
    with pytest.raises(ValueError, match="feature_lr_warmup_iterations"):
        replace(s, feature_lr_warmup_iterations=-1)


def _cyclegan_file(path, ngf: int, n_blocks: int, seed: int = 5):
    nets = build_cyclegan(ngf=ngf, ndf=4, n_blocks=n_blocks, n_disc_layers=2, seed=seed)
    return save_generators(path, {n: nets[n] for n in ("G_rgb2ir", "G_ir2rgb")}), nets


def test_pixel_init_cyclegan_starts_both_generators_from_the_cyclegan_file(cache, tmp_path):
    gen_path, nets = _cyclegan_file(tmp_path / "generator.pt", ngf=4, n_blocks=1)
    s = replace(TINY, generator="cyclegan", pixel_init="cyclegan", norm_statistics="per_image",
                feature_warmup_iterations=1, pixel_warmup_iterations=0, joint_iterations=0)
    model_path = train_aligngan(cache, tmp_path / "run", s, device="cpu", seed=0, init_generators=gen_path)
    model, _ = load_aligngan_model(model_path)
    for name in ("G_rgb2ir", "G_ir2rgb"):  # one feature warm-up iteration leaves the generators as loaded
        loaded, expected = getattr(model, name).state_dict(), nets[name].state_dict()
        assert loaded.keys() == expected.keys()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected), name
    # Without pixel_init the same settings start from random weights.
    fresh = train_aligngan(cache, tmp_path / "fresh", replace(s, pixel_init="none"), device="cpu", seed=0)
    fresh_model, _ = load_aligngan_model(fresh)
    assert not torch.equal(fresh_model.G_rgb2ir.state_dict()["model.1.weight"], nets["G_rgb2ir"].state_dict()["model.1.weight"])


def test_pixel_init_cyclegan_needs_a_generator_file_that_fits(cache, tmp_path):
    s = replace(TINY, generator="cyclegan", pixel_init="cyclegan", norm_statistics="per_image")
    with pytest.raises(ValueError, match="needs the trial's CycleGAN generator file"):
        train_aligngan(cache, tmp_path / "a", s, device="cpu")
    wide, _ = _cyclegan_file(tmp_path / "wide.pt", ngf=8, n_blocks=1)
    with pytest.raises(ValueError, match=r"wide.pt: CycleGAN generators of ngf 8, 1 residual blocks; .* ngf=4, n_blocks=1"):
        train_aligngan(cache, tmp_path / "b", s, device="cpu", init_generators=wide)
    assert not (tmp_path / "b" / "model.pt").exists()


def test_generator_and_pixel_init_settings_are_checked():
    with pytest.raises(ValueError, match="pixel_init='cyclegan': expected 'none' with generator 'aligngan'"):
        replace(TINY, pixel_init="cyclegan")
    with pytest.raises(ValueError, match="norm_statistics='running': expected 'per_image' with generator 'cyclegan'"):
        replace(TINY, generator="cyclegan")
    with pytest.raises(ValueError, match="generator='stargan'"):
        replace(TINY, generator="stargan", norm_statistics="per_image")
    assert (AlignGANSettings().generator, AlignGANSettings().pixel_init) == ("aligngan", "none")  # official


def test_a_checkpoint_made_from_another_cyclegan_is_not_resumed(cache, tmp_path, caplog):
    s = replace(TINY, generator="cyclegan", pixel_init="cyclegan", norm_statistics="per_image",
                feature_warmup_iterations=1, pixel_warmup_iterations=1, joint_iterations=1)
    first, _ = _cyclegan_file(tmp_path / "first.pt", ngf=4, n_blocks=1, seed=1)
    second, _ = _cyclegan_file(tmp_path / "second.pt", ngf=4, n_blocks=1, seed=2)
    train_aligngan(cache, tmp_path / "run", s, device="cpu", init_generators=first)
    with caplog.at_level(logging.WARNING):
        train_aligngan(cache, tmp_path / "run", s, device="cpu", init_generators=second)
    assert "ignoring checkpoint" in caplog.text and "starting over" in caplog.text
