"""The glue of CE²L re-ID training, checked against hand-computed values and by watching a run.

* resume: runtime settings (``num_workers``, ``amp``, ``channels_last``) changed between the
  interrupted and the resumed run still resume exactly; a changed learnt setting, seed or
  cache restarts with a warning naming it; a checkpoint without GradScaler state resumes with
  an enabled scaler (the fp16-on-CUDA case).
* ``reid_loss_terms``: ``l_intra`` is summed over each modality separately, the embeddings are
  L2-normalised first (unless switched off), ``l_cross`` has its hand-computed value.
* ``train_reid``: LSR reaches exactly the converted rows; each row reaches the stream of the
  modality its pixels show (an RGB->IR conversion the thermal one).

Real SYSU-MM01 sample images (``../shared/data/sysu_mm01_sample``) at 32x16 pixels.
"""

import logging
import math
import shutil
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

import rgbir_reid.training.checkpoints as checkpoints
import rgbir_reid.training.reid as reid
import rgbir_reid.training.reid_loss as reid_loss
from rgbir_reid.data.cache import KIND_CONVERTED, KIND_REAL, write_cache
from rgbir_reid.models.reid import build_reid_model
from rgbir_reid.data.records import REAL_SETS
from rgbir_reid.training.reid import train_reid
from rgbir_reid.training.reid_loss import reid_loss_terms
from rgbir_reid.training.reid_settings import ReidSettings
from reid_tiny import TINY, assert_same_weights, sample_records

SEED = 3

ONE_EPOCH = replace(TINY, epochs=1)




def inverted_grey(x):
    """RGB -> "IR": inverted luminance in all three channels, uint8 [B, H, W, 3]."""
    grey = (x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)
    return np.repeat((255 - grey)[..., None], 3, axis=-1)


def inverted(x):
    """IR -> "RGB": the inverted image, uint8 [B, H, W, 3]."""
    return 255 - x


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "cache.h5"
    return write_cache(path, sample_records(), (32, 16), converters={"rgb2ir": inverted_grey, "ir2rgb": inverted})


@pytest.fixture(scope="module")
def cache_meta(cache):
    with h5py.File(cache) as f:
        return {k: f[k][()] for k in ("kind", "modality")}


@pytest.fixture(scope="module")
def reference_run(cache, tmp_path_factory):
    return train_reid(cache, tmp_path_factory.mktemp("reference"), TINY, device="cpu", seed=SEED)


class Interrupt(Exception):
    pass


def stop_after_first(epochs_done, row):
    if epochs_done == 1:
        raise Interrupt


@pytest.fixture(scope="module")
def one_epoch_checkpoint(cache, tmp_path_factory):
    """``checkpoints/last.pt`` of a TINY run interrupted after its first epoch."""
    out = tmp_path_factory.mktemp("interrupted")
    with pytest.raises(Interrupt):
        train_reid(cache, out, TINY, device="cpu", seed=SEED, on_epoch_end=stop_after_first)
    return out / "checkpoints" / "last.pt"


def out_dir_with(checkpoint: Path, out: Path) -> Path:
    (out / "checkpoints").mkdir(parents=True)
    shutil.copyfile(checkpoint, out / "checkpoints" / "last.pt")
    return out




def logged(caplog, level):
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno == level)


def ignore_reason(warning: str) -> str:
    """The reason of an ``ignoring checkpoint <path>: <reason>`` warning (the path may hold any word)."""
    assert warning.startswith("ignoring checkpoint "), warning
    return warning.split("last.pt: ", 1)[1]


# --- Task A: resume ---------------------------------------------------------------------------


def test_changed_runtime_settings_resume_exactly(cache, reference_run, one_epoch_checkpoint, tmp_path, caplog):
    out = out_dir_with(one_epoch_checkpoint, tmp_path / "resumed")
    runtime_changed = replace(TINY, amp="none")  # AMP is CUDA only: on CPU the same arithmetic
    logger = logging.getLogger("test_runtime")
    with caplog.at_level(logging.INFO, logger="test_runtime"):
        resumed = train_reid(cache, out, runtime_changed, device="cpu", seed=SEED, logger=logger)
    info = logged(caplog, logging.INFO)
    assert "resuming from epoch 2" in info and "ignoring" not in caplog.text
    assert "amp bf16 -> none" in info
    assert "num_workers" not in info and "channels_last" not in info  # unchanged, so not named
    assert_same_weights(reference_run, resumed)
    losses = pd.read_csv(out / "losses.csv").drop(columns="images_per_s")
    assert losses.equals(pd.read_csv(reference_run.parent / "losses.csv").drop(columns="images_per_s"))


def test_changed_memory_format_resumes_with_only_rounding_differences(cache, reference_run, one_epoch_checkpoint,
                                                                       tmp_path, caplog):
    """channels_last is used on CPU too, where oneDNN's NHWC kernels round differently: a run
    resumed in the other format keeps its checkpoint (epoch 1 is the checkpoint's, exactly)
    and trains on from it; from there the rounding differences grow, so its later epochs are
    not compared with the uninterrupted run's."""
    out = out_dir_with(one_epoch_checkpoint, tmp_path / "resumed")
    logger = logging.getLogger("test_memory_format")
    with caplog.at_level(logging.INFO, logger="test_memory_format"):
        resumed = train_reid(cache, out, replace(TINY, channels_last=False), device="cpu", seed=SEED, logger=logger)
    info = logged(caplog, logging.INFO)
    assert "resuming from epoch 2" in info and "channels_last True -> False" in info
    assert "ignoring" not in caplog.text
    ours = pd.read_csv(out / "losses.csv").drop(columns="images_per_s")
    reference = pd.read_csv(reference_run.parent / "losses.csv").drop(columns="images_per_s")
    assert len(ours) == len(reference) == TINY.epochs
    assert ours.iloc[0].equals(reference.iloc[0])  # the checkpoint's epoch, carried over
    weights = torch.load(resumed, weights_only=True)["state_dict"]
    assert all(torch.isfinite(w.float()).all() for w in weights.values())


def test_changed_lr_restarts_with_a_warning_naming_it(cache, reference_run, tmp_path, caplog):
    out = out_dir_with(reference_run.parent / "checkpoints" / "last.pt", tmp_path / "other_lr")
    logger = logging.getLogger("test_lr")
    # amp differs too, but is a runtime setting: the warning must not name it.
    with caplog.at_level(logging.INFO, logger="test_lr"):
        train_reid(cache, out, replace(ONE_EPOCH, lr=0.05, amp="none"), device="cpu", seed=SEED, logger=logger)
    assert "resuming" not in caplog.text
    reason = ignore_reason(logged(caplog, logging.WARNING))
    assert reason == "epochs 3 -> 1, lr 0.01 -> 0.05; starting over"  # in field order; amp is not named
    frame = pd.read_csv(out / "losses.csv")
    assert len(frame) == 1 and frame["lr"].tolist() == pytest.approx([0.025])  # warm-up: lr / 2


def test_other_seed_cache_or_old_checkpoint_restarts_saying_why(cache, one_epoch_checkpoint, tmp_path, caplog):
    def warning_of(name, cache_path, seed, checkpoint=one_epoch_checkpoint):
        caplog.clear()
        out = out_dir_with(checkpoint, tmp_path / name)
        # One epoch shows that training started over; no need to finish.
        with caplog.at_level(logging.INFO, logger="test_why"), pytest.raises(Interrupt):
            train_reid(cache_path, out, TINY, device="cpu", seed=seed,
                       logger=logging.getLogger("test_why"), on_epoch_end=stop_after_first)
        assert "resuming" not in caplog.text
        assert pd.read_csv(out / "losses.csv")["epoch"].tolist() == [1]
        return logged(caplog, logging.WARNING)

    assert ignore_reason(warning_of("seed", cache, SEED + 1)) == "seed 3 -> 4; starting over"
    other_cache = write_cache(tmp_path / "other.h5", sample_records(), (32, 16), config_hash="other",
                              converters={"rgb2ir": inverted_grey, "ir2rgb": inverted})
    assert ignore_reason(warning_of("cache", other_cache, SEED)) == "the cache differs (config_hash); starting over"
    # A checkpoint written before the settings were stored in it gets a generic reason.
    old = torch.load(one_epoch_checkpoint, weights_only=True)
    for key in ("learnt_settings", "runtime_settings", "seed", "cache"):
        del old[key]
    old["fingerprint"] = "hash of all settings, runtime ones included"
    torch.save(old, tmp_path / "old.pt")
    old_reason = ignore_reason(warning_of("old", cache, SEED, checkpoint=tmp_path / "old.pt"))
    assert "other settings, seed or cache" in old_reason


def test_checkpoint_of_other_training_code_restarts_saying_so(cache, reference_run, tmp_path, caplog, monkeypatch):
    """A finished run's checkpoint, met by other training code (an upgrade, a fixed loss), is
    not handed back as this code's result: training starts over and the warning says why."""
    old_code = checkpoints.training_code_hash()
    assert torch.load(reference_run.parent / "checkpoints" / "last.pt", weights_only=True)["code"] == old_code
    out = out_dir_with(reference_run.parent / "checkpoints" / "last.pt", tmp_path / "new_code")
    monkeypatch.setattr(checkpoints, "training_code_hash", lambda: "0123456789abcdef")
    logger = logging.getLogger("test_code")
    with caplog.at_level(logging.INFO, logger="test_code"), pytest.raises(Interrupt):
        train_reid(cache, out, TINY, device="cpu", seed=SEED, logger=logger, on_epoch_end=stop_after_first)
    assert "resuming" not in caplog.text and "already done" not in caplog.text
    reason = ignore_reason(logged(caplog, logging.WARNING))
    assert reason == f"the library's training code changed ({old_code} -> 0123456789abcdef); starting over"
    assert pd.read_csv(out / "losses.csv")["epoch"].tolist() == [1]
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["code"] == "0123456789abcdef"


class RecordingScaler:
    """Stand-in for ``torch.amp.GradScaler``: ``is_enabled()`` and a ``load_state_dict`` that records."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.loaded = enabled, []

    def is_enabled(self) -> bool:
        return self.enabled

    def load_state_dict(self, state: dict) -> None:
        if self.enabled and not state:
            raise RuntimeError("The source state dict is empty")  # as GradScaler does
        self.loaded.append(state)


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("saved", [{}, {"scale": 8.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                                       "growth_interval": 2000, "_growth_tracker": 3}])
def test_scaler_state_is_loaded_only_when_non_empty_into_an_enabled_scaler(enabled, saved, caplog):
    scaler = RecordingScaler(enabled)
    log = logging.getLogger("test_scaler")
    with caplog.at_level(logging.INFO, logger="test_scaler"):
        checkpoints.load_scaler_state(scaler, saved, log)
    assert scaler.loaded == ([saved] if enabled and saved else [])
    assert ("fresh scaler" in caplog.text) == (enabled and not saved)


def test_scaler_helper_with_a_real_enabled_grad_scaler():
    # GradScaler("cpu") is an enabled scaler without CUDA; it raises on {} as the CUDA one does.
    log = logging.getLogger("test_scaler")
    with pytest.raises(RuntimeError, match="empty"):
        torch.amp.GradScaler("cpu").load_state_dict({})
    fresh = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    checkpoints.load_scaler_state(fresh, torch.amp.GradScaler("cuda", enabled=False).state_dict(), log)
    assert fresh.get_scale() == 2.0**10
    restored = torch.amp.GradScaler("cpu")
    checkpoints.load_scaler_state(restored, torch.amp.GradScaler("cpu", init_scale=8.0).state_dict(), log)
    assert restored.get_scale() == 8.0


def test_cpu_checkpoint_resumes_with_an_enabled_scaler(cache, one_epoch_checkpoint, tmp_path, monkeypatch, caplog):
    # What fp16 AMP on CUDA does to the resume: the checkpoint (CPU, scaler disabled) holds {},
    # the new run's scaler is enabled. An enabled CPU GradScaler stands in for the CUDA one.
    real = torch.amp.GradScaler
    assert torch.load(one_epoch_checkpoint, weights_only=True)["scaler"] == {}
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device, enabled=True: real("cpu", init_scale=2.0**10))
    out = out_dir_with(one_epoch_checkpoint, tmp_path / "fp16")
    logger = logging.getLogger("test_fp16")

    def stop_after_second(epochs_done, row):
        if epochs_done == 2:
            raise Interrupt

    with caplog.at_level(logging.INFO, logger="test_fp16"), pytest.raises(Interrupt):
        train_reid(cache, out, replace(TINY, amp="fp16"), device="cpu", seed=SEED, logger=logger,
                   on_epoch_end=stop_after_second)
    assert "fresh scaler" in caplog.text and "resuming from epoch 2" in caplog.text
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["scaler"]["scale"] > 0


# --- Task B (1): reid_loss_terms against hand-computed values -------------------------------------


def unit(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


# Rows v0, t0, v1, t1 (modalities interleaved): identity 7 = v0, t0; identity 9 = v1, t1. Their
# directions are 0°, 120°, 60°, 180°, their norms 2, 1, 1, 0.5. Between unit vectors an angle of
# 60° is D = 1, 120° is D = √3, 180° is D = 2.
EMB = torch.tensor([[2 * c for c in unit(0)], unit(120), unit(60), [0.5 * c for c in unit(180)]])
PID = torch.tensor([7, 7, 9, 9])
MODALITY = torch.tensor([0, 1, 0, 1])
TARGET = torch.tensor([0, 0, 1, 1])
LOGITS = torch.zeros(4, 2)
HARD = torch.zeros(4, dtype=torch.bool)
R3, R7 = math.sqrt(3), math.sqrt(7)
MARGINS = {"margin_cross": 0.5, "margin_intra": 1.5}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_intra_is_summed_within_each_modality_on_normalised_embeddings(reduction):
    terms = reid_loss_terms(EMB, LOGITS, PID, MODALITY, TARGET, HARD,
                            replace(TINY, **MARGINS, loss_reduction=reduction))
    # Visible: one pair of different identities (v0, v1), 60° -> D = 1, max(1.5 - 1, 0) = 0.5.
    # Thermal: (t0, t1), 60° -> D = 1 -> 0.5. One pair each, so mean = sum: l_intra = 1.0.
    assert terms["intra"].item() == pytest.approx(1.0, abs=1e-6)
    # Over the mixed batch it would also take (v0, t1) at D = 2 (-> 0) and (t0, v1) at D = 1
    # (-> 0.5): mean 1.5 / 4 = 0.375, sum 1.5. The cases differ from the right 1.0.
    mixed = reid_loss.intra_modality_constraint(torch.nn.functional.normalize(EMB, dim=1), PID, 1.5, reduction)
    assert mixed.item() == pytest.approx({"mean": 0.375, "sum": 1.5}[reduction], abs=1e-6)


def test_normalize_embedding_false_uses_the_raw_embeddings():
    raw = reid_loss_terms(EMB, LOGITS, PID, MODALITY, TARGET, HARD,
                          replace(TINY, **MARGINS, normalize_embedding=False))
    # Raw: v0 = (2, 0), v1 = (1/2, √3/2): D² = 9/4 + 3/4 = 3, D = √3 > 1.5 -> 0;
    # t0 = (-1/2, √3/2), t1 = (-1/2, 0): D = √3/2 -> 1.5 - √3/2.
    assert raw["intra"].item() == pytest.approx(1.5 - R3 / 2, abs=1e-6)
    # Cross, raw. V->T: v0: D(v0, t0)² = 25/4 + 3/4 = 7, nearest negative t1 at 2.5 -> √7 - 2;
    # v1: D(v1, t1) = √7/2, negative t0 at 1 -> √7/2 - 1/2. T->V: t0: positive v0 at √7,
    # negative v1 at 1 -> √7 - 1/2; t1: positive v1 at √7/2, negative v0 at 2.5 -> √7/2 - 2 < 0 -> 0.
    # Mean of each direction, then added: (3√7/2 - 5/2) / 2 + (√7 - 1/2) / 2 = (5√7/2 - 3) / 2.
    assert raw["cross"].item() == pytest.approx((2.5 * R7 - 3) / 2, abs=1e-6)


@pytest.mark.parametrize("reduction, expected", [("mean", 2 * (R3 - 1)), ("sum", 4 * (R3 - 1))])
def test_cross_term_hand_computed(reduction, expected):
    terms = reid_loss_terms(EMB, LOGITS, PID, MODALITY, TARGET, HARD,
                            replace(TINY, **MARGINS, loss_reduction=reduction))
    # Normalised, ρ1 = 0.5. V->T: v0 (0°): positive t0 at 120° (√3), negative t1 at 180° (2)
    # -> √3 - 2 + 0.5; v1 (60°): positive t1 at 120° (√3), negative t0 at 60° (1) -> √3 - 0.5.
    # Sum √3·2 - 2 = 2(√3 - 1), mean √3 - 1. T->V is the mirror image: t0 -> √3 - 0.5,
    # t1 -> √3 - 1.5; the same. l_cross = mean 2(√3 - 1), sum 4(√3 - 1).
    assert terms["cross"].item() == pytest.approx(expected, abs=1e-6)


# --- Task B (2), (3): what train_reid feeds the loss and the streams -----------------------------


@pytest.fixture
def fetched_rows(monkeypatch):
    """File rows of each batch train_reid reads, in order (``[B]`` int arrays)."""
    rows = []

    class RecordingDataset(reid.CacheBatchDataset):
        def __getitem__(self, positions):
            batch = super().__getitem__(positions)
            rows.append(batch["index"].numpy().copy())
            return batch

    monkeypatch.setattr(reid, "CacheBatchDataset", RecordingDataset)
    return rows


@pytest.mark.parametrize("method, train_sets", [
    ("ce2l", None),
    ("baseline", None),
    # Rows that are not a prefix of the file: the mask must be looked up by file row.
    ("ce2l", ("real_thermal", "converted_visible")),
])
def test_lsr_reaches_exactly_the_converted_rows(cache, cache_meta, fetched_rows, monkeypatch, tmp_path,
                                                method, train_sets):
    smooth_of_step = []
    lsr = reid_loss.lsr_cross_entropy

    def recording_lsr(logits, target, epsilon, smooth, **kwargs):
        smooth_of_step.append(smooth.cpu().numpy().copy())
        return lsr(logits, target, epsilon, smooth, **kwargs)

    monkeypatch.setattr(reid_loss, "lsr_cross_entropy", recording_lsr)
    # The demo config's two methods: ce2l as the settings stand, the baseline on real images only.
    settings = ONE_EPOCH if method == "ce2l" else replace(ONE_EPOCH, train_sets=REAL_SETS, lsr_sets=(), weight_intra=0.0)
    if train_sets is not None:
        settings = replace(settings, train_sets=train_sets)
    train_reid(cache, tmp_path / "run", settings, device="cpu", seed=SEED)
    assert len(smooth_of_step) == len(fetched_rows) == settings.batches_per_epoch
    for rows, smooth in zip(fetched_rows, smooth_of_step):
        converted = cache_meta["kind"][rows] == KIND_CONVERTED
        if method == "baseline":
            assert not converted.any() and not smooth.any()
        else:
            assert converted.any() and (~converted).any()  # both kinds in every batch
            assert np.array_equal(smooth, converted)


def test_each_row_reaches_the_stream_of_its_pixels_modality(cache, cache_meta, fetched_rows, monkeypatch, tmp_path):
    steps = []  # per step: {"x": model input, "visible": visible stream input, "thermal": ...}
    build = reid.model_from_settings

    def hooked_model(*args, **kwargs):
        model = build(*args, **kwargs)
        model.register_forward_pre_hook(lambda m, inputs: steps.append({"x": inputs[0].detach().clone()}))
        for name in ("visible", "thermal"):
            stream = getattr(model, f"{name}_stream")
            stream.register_forward_pre_hook(
                lambda m, inputs, name=name: steps[-1].__setitem__(name, inputs[0].detach().clone()))
        return model

    monkeypatch.setattr(reid, "model_from_settings", hooked_model)
    train_reid(cache, tmp_path / "run", ONE_EPOCH, device="cpu", seed=SEED)
    assert len(steps) == len(fetched_rows) == ONE_EPOCH.batches_per_epoch
    seen = set()
    for rows, step in zip(fetched_rows, steps):
        kind, modality = cache_meta["kind"][rows], cache_meta["modality"][rows]
        seen |= set(zip(kind.tolist(), modality.tolist()))
        for code, name in ((0, "visible"), (1, "thermal")):
            stream_input = step[name]
            assert len(stream_input) == (modality == code).sum()
            for i in np.flatnonzero(modality == code):
                assert any(torch.equal(step["x"][i], s) for s in stream_input), (
                    f"row {rows[i]} (kind {kind[i]}, modality {code}) did not reach the {name} stream")
    # Every set took part: RGB->IR conversions (kind 1, modality 1) among the thermal inputs,
    # IR->RGB ones (kind 1, modality 0) among the visible ones.
    assert seen == {(KIND_REAL, 0), (KIND_REAL, 1), (KIND_CONVERTED, 1), (KIND_CONVERTED, 0)}


def test_two_stream_net_routes_each_sample_by_its_modality_code():
    torch.manual_seed(0)
    model = build_reid_model("two_stream_resnet18", 3, embedding_dim=8, pretrained="none").eval()
    with torch.no_grad():  # the two streams start equal; make them differ so routing shows
        for p in model.thermal_stream.parameters():
            p.add_(0.5 * torch.randn_like(p))
    x = torch.randn(5, 3, 32, 16)
    modality = torch.tensor([1, 0, 0, 1, 0])
    vis, th = modality == 0, modality == 1
    with torch.no_grad():
        assert not torch.allclose(model.visible_stream(x), model.thermal_stream(x), atol=1e-3)
        emb, logits = model(x, modality)
        shallow = torch.empty_like(model.visible_stream(x))
        shallow[vis] = model.visible_stream(x[vis])
        shallow[th] = model.thermal_stream(x[th])
        expected = model.bn(model.embedding(model.shared_deep(shallow)))
        torch.testing.assert_close(emb, expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(logits, model.classifier(expected), rtol=1e-5, atol=1e-5)
        # A one-modality batch goes through that stream alone.
        only_thermal, _ = model(x, torch.ones(5, dtype=torch.long))
        expected_thermal = model.bn(model.embedding(model.shared_deep(model.thermal_stream(x))))
        torch.testing.assert_close(only_thermal, expected_thermal, rtol=1e-5, atol=1e-5)


def test_new_layers_get_their_own_learning_rate():
    settings = ReidSettings(architecture="two_stream_resnet18", pretrained="none", embedding_dim=8,
                            lr=0.01, new_layer_lr_factor=10.0)
    model = reid.model_from_settings(settings, 3)
    opt = reid._make_optimizer(model, settings)
    backbone, new = opt.param_groups
    assert backbone["lr"] == pytest.approx(0.01) and new["lr"] == pytest.approx(0.1)
    assert {id(p) for p in new["params"]} == {id(p) for p in model.new_parameters()}
    assert len(backbone["params"]) + len(new["params"]) == len(list(model.parameters()))
    # The schedule scales both groups by the same factor.
    torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.005, 0.05])
    with pytest.raises(ValueError, match="new_layer_lr_factor"):
        ReidSettings(new_layer_lr_factor=0)
    with pytest.raises(ValueError, match="specific_stages"):
        ReidSettings(specific_stages="some")
