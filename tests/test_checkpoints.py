"""Damaged, foreign and non-checkpoint files: every loader of a torch file raises a
:class:`CheckpointError` naming the file and what is wrong, raised from the library (no traceback
from inside torch), and reads with ``weights_only=True`` (a pickle of code is refused).

Loaders: the re-ID model file (:func:`load_reid_model`), the re-ID resume checkpoint
(:func:`train_reid`), the CycleGAN resume checkpoint (:func:`train_cyclegan`) and the generator
file (:func:`load_generators`, and the cache build that reads it).
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from reid_tiny import TINY as REID_TINY
from reid_tiny import sample_records
from rgbir_reid.conversion import build_cache, load_generators, save_generators
from rgbir_reid.data.cache import write_cache
from rgbir_reid.models.cyclegan import GENERATOR_NAMES, build_cyclegan
from rgbir_reid.io import CheckpointError
from rgbir_reid.training.cyclegan import CycleGANSettings, train_cyclegan
from rgbir_reid.training.reid import train_reid
from rgbir_reid.training.reid_model import load_reid_model, model_from_settings, save_reid_model

SRC = Path(__file__).resolve().parents[1] / "src" / "rgbir_reid"
GAN_TINY = dict(image_size=(32, 16), ngf=4, ndf=4, n_blocks=1, log_every=2, checkpoint_every=2, sample_count=0)


class _Evil:
    """Unpickling it would run code: ``weights_only=True`` must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _damage(kind: str, path: Path, valid: bytes) -> str:
    """Write a damaged file of ``kind`` at ``path``; return a word its error message must hold."""
    if kind == "truncated":
        path.write_bytes(valid[: len(valid) // 2])
        return "not a readable checkpoint"
    if kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        return "not a readable checkpoint"
    if kind == "text":
        path.write_text("epoch: 3\nlr: 0.01\n")
        return "not a readable checkpoint"
    if kind == "empty":
        path.write_bytes(b"")
        return "not a readable checkpoint"
    if kind == "not_a_dict":
        torch.save([1, 2, 3], path)
        return "holds a list"
    if kind == "pickled_code":
        with open(path, "wb") as f:
            pickle.dump({"model": _Evil()}, f)
        return "not a readable checkpoint"
    raise AssertionError(kind)


# A text file makes torch's weights-only unpickler raise IndexError ("pop from empty list"): the
# loader must name the file for that too.
DAMAGE = ["truncated", "random_bytes", "text", "empty", "not_a_dict", "pickled_code"]


def _raised_by_the_library(excinfo: pytest.ExceptionInfo) -> None:
    """The error comes from our code, with no chained exception from inside torch."""
    assert excinfo.type is CheckpointError
    e = excinfo.value
    assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__), e.__context__
    assert Path(excinfo.traceback[-1].path).is_relative_to(SRC), excinfo.traceback[-1].path


def _generators(path: Path, ngf: int = 4) -> Path:
    nets = build_cyclegan(ngf=ngf, ndf=4, n_blocks=1, n_disc_layers=1, seed=0)
    return save_generators(path, {n: nets[n] for n in GENERATOR_NAMES})


def _reid_model(path: Path) -> Path:
    return save_reid_model(path, model_from_settings(REID_TINY, 2, pretrained="none"), REID_TINY, [1, 2])


# --- the re-ID model file ------------------------------------------------------------------


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_reid_model_file_is_named(kind, tmp_path):
    valid = _reid_model(tmp_path / "valid.pt").read_bytes()
    bad = tmp_path / "model.pt"
    expected = _damage(kind, bad, valid)
    with pytest.raises(CheckpointError) as excinfo:
        load_reid_model(bad)
    assert str(bad) in str(excinfo.value) and expected in str(excinfo.value)
    _raised_by_the_library(excinfo)


def test_foreign_files_as_reid_model_are_named(tmp_path):
    generator = _generators(tmp_path / "generator.pt")
    with pytest.raises(CheckpointError, match="is not a 'rgbir_reid.reid_model/1' file") as excinfo:
        load_reid_model(generator)
    assert str(generator) in str(excinfo.value)
    _raised_by_the_library(excinfo)

    # Another configuration: the settings say embedding 32, the weights are of embedding 16.
    state = torch.load(_reid_model(tmp_path / "model.pt"), weights_only=True)
    state["settings"]["embedding_dim"] = 32
    other = tmp_path / "other_config.pt"
    torch.save(state, other)
    with pytest.raises(CheckpointError, match="weights do not fit") as excinfo:
        load_reid_model(other)
    assert str(other) in str(excinfo.value)
    _raised_by_the_library(excinfo)


# --- the re-ID resume checkpoint -----------------------------------------------------------


@pytest.fixture(scope="module")
def reid_cache(tmp_path_factory):
    return write_cache(tmp_path_factory.mktemp("reid_cache") / "cache.h5", sample_records(), (32, 16))


@pytest.mark.parametrize("kind", ["truncated", "text", "not_a_dict"])
def test_damaged_reid_resume_checkpoint_is_named(kind, reid_cache, tmp_path):
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    valid = _reid_model(tmp_path / "valid.pt").read_bytes()
    expected = _damage(kind, ckpt, valid)
    with pytest.raises(CheckpointError) as excinfo:
        train_reid(reid_cache, tmp_path / "run", REID_TINY, device="cpu", seed=0)
    assert str(ckpt) in str(excinfo.value) and expected in str(excinfo.value)
    _raised_by_the_library(excinfo)
    assert not (tmp_path / "run" / "model.pt").exists()


def test_foreign_file_as_reid_resume_checkpoint_is_named(reid_cache, tmp_path):
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    _reid_model(ckpt)  # a model file where the checkpoint belongs
    with pytest.raises(CheckpointError, match="lacks fingerprint") as excinfo:
        train_reid(reid_cache, tmp_path / "run", REID_TINY, device="cpu", seed=0)
    assert str(ckpt) in str(excinfo.value)
    _raised_by_the_library(excinfo)


# --- the CycleGAN resume checkpoint --------------------------------------------------------


def _sample_paths() -> tuple[list[str], list[str]]:
    records = sample_records()
    return ([r.path for r in records if r.modality == "visible"][:4],
            [r.path for r in records if r.modality == "thermal"][:4])


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_cyclegan_checkpoint_is_named(kind, tmp_path):
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    expected = _damage(kind, ckpt, _generators(tmp_path / "valid.pt").read_bytes())
    visible, thermal = _sample_paths()
    with pytest.raises(CheckpointError) as excinfo:
        train_cyclegan(visible, thermal, tmp_path / "run", CycleGANSettings(**GAN_TINY, iterations=2))
    assert str(ckpt) in str(excinfo.value) and expected in str(excinfo.value)
    _raised_by_the_library(excinfo)
    assert not (tmp_path / "run" / "generator.pt").exists()


def test_foreign_file_as_cyclegan_checkpoint_is_named(tmp_path):
    ckpt = _generators(tmp_path / "run" / "checkpoints" / "last.pt")  # a generator file, format 1 too
    visible, thermal = _sample_paths()
    with pytest.raises(CheckpointError, match="lacks iteration") as excinfo:
        train_cyclegan(visible, thermal, tmp_path / "run", CycleGANSettings(**GAN_TINY, iterations=2))
    assert str(ckpt) in str(excinfo.value)
    _raised_by_the_library(excinfo)


def test_cyclegan_checkpoint_of_other_configuration_is_ignored_with_the_difference_named(tmp_path, caplog):
    visible, thermal = _sample_paths()
    train_cyclegan(visible, thermal, tmp_path, CycleGANSettings(**GAN_TINY, iterations=2), seed=0)
    ckpt = tmp_path / "checkpoints" / "last.pt"
    with caplog.at_level(logging.INFO, logger="rgbir_reid.training.cyclegan"):
        train_cyclegan(visible, thermal, tmp_path, CycleGANSettings(**{**GAN_TINY, "lr": 1e-4}, iterations=2), seed=1)
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert warning == f"ignoring {ckpt}: lr 0.0002 -> 0.0001, seed 0 -> 1; starting over"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rgbir_reid.training.cyclegan"):  # other images
        train_cyclegan(visible[:2], thermal, tmp_path, CycleGANSettings(**{**GAN_TINY, "lr": 1e-4}, iterations=2), seed=1)
    assert any("the training images differ" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rgbir_reid.training.cyclegan"):  # runtime settings only: resumes
        train_cyclegan(visible[:2], thermal, tmp_path, CycleGANSettings(**{**GAN_TINY, "lr": 1e-4, "log_every": 1},
                                                                       iterations=2), seed=1)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(r.getMessage().startswith("resuming from iteration 2 of 2") for r in caplog.records)


def test_cyclegan_checkpoint_of_other_training_code_is_ignored_saying_so(tmp_path, caplog, monkeypatch):
    import rgbir_reid.training.checkpoints as checkpoints
    import rgbir_reid.training.cyclegan as cyclegan

    visible, thermal = _sample_paths()
    settings = CycleGANSettings(**GAN_TINY, iterations=2)
    train_cyclegan(visible, thermal, tmp_path, settings, seed=0)
    old = checkpoints.training_code_hash()
    for module in (checkpoints, cyclegan):
        monkeypatch.setattr(module, "training_code_hash", lambda: "fedcba9876543210")
    with caplog.at_level(logging.INFO, logger="rgbir_reid.training.cyclegan"):  # the same settings, finished
        train_cyclegan(visible, thermal, tmp_path, settings, seed=0)
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.endswith(f": the library's training code changed ({old} -> fedcba9876543210); starting over")
    assert not any("resuming" in r.getMessage() for r in caplog.records)
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["code"] == "fedcba9876543210"


# --- the generator file --------------------------------------------------------------------


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_generator_file_is_named(kind, tmp_path):
    bad = tmp_path / "generator.pt"
    expected = _damage(kind, bad, _generators(tmp_path / "valid.pt").read_bytes())
    with pytest.raises(CheckpointError) as excinfo:
        load_generators(bad)
    assert str(bad) in str(excinfo.value) and expected in str(excinfo.value)
    _raised_by_the_library(excinfo)


def test_foreign_files_as_generator_file_are_named(tmp_path):
    model = _reid_model(tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="lacks ngf, n_blocks, G_rgb2ir, G_ir2rgb") as excinfo:
        load_generators(model)
    assert str(model) in str(excinfo.value)
    _raised_by_the_library(excinfo)

    state = torch.load(_generators(tmp_path / "generator.pt"), weights_only=True)
    wrong_format = tmp_path / "format2.pt"
    torch.save({**state, "format": 2}, wrong_format)
    with pytest.raises(CheckpointError, match="generator file of format 2; this version reads format 1"):
        load_generators(wrong_format)

    other = tmp_path / "other_config.pt"  # says ngf 8, holds the weights of ngf 4
    torch.save({**state, "ngf": 8}, other)
    with pytest.raises(CheckpointError, match="G_rgb2ir weights do not fit a generator of ngf 8") as excinfo:
        load_generators(other)
    assert str(other) in str(excinfo.value)
    _raised_by_the_library(excinfo)


def test_cache_build_names_a_damaged_generator_and_leaves_no_cache(tmp_path):
    bad = tmp_path / "generator.pt"
    _damage("truncated", bad, _generators(tmp_path / "valid.pt").read_bytes())
    out = tmp_path / "cache.h5"
    with pytest.raises(CheckpointError, match="generator.pt is not a readable checkpoint"):
        build_cache(out, sample_records()[:4], (32, 16), bad)
    assert sorted(tmp_path.iterdir()) == sorted([bad, tmp_path / "valid.pt"])  # no cache, no temporary file


def test_generator_file_bytes_depend_on_the_weights_only(tmp_path):
    """Same generators, same bytes: the cache names the generator by its sha256."""
    a, b = _generators(tmp_path / "a" / "generator.pt"), _generators(tmp_path / "b.pt")
    assert a.read_bytes() == b.read_bytes()
    assert _generators(tmp_path / "c.pt", ngf=8).read_bytes() != a.read_bytes()


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_sources_hash_follows_the_training_code_only(tmp_path):
    from rgbir_reid.training.checkpoints import TRAINING_CODE, sources_hash, training_code_hash

    files = {"losses/ranking.py": "margin = 0.5\n", "training/loop.py": "steps = 3\n",
             "reporting/tables.py": "digits = 2\n", "losses/notes.txt": "not code\n"}
    base = sources_hash(_package(tmp_path / "a", files))
    assert sources_hash(_package(tmp_path / "b", files)) == base  # same files, other folder
    for rel, text, moves in [("losses/ranking.py", "margin = 0.3\n", True),  # a fix in a loss
                             ("training/loop.py", "steps = 3  # a comment\n", True),
                             ("models/new.py", "width = 8\n", True),  # a new training module
                             ("reporting/tables.py", "digits = 3\n", False),  # not training code
                             ("losses/notes.txt", "edited\n", False)]:  # not Python
        root = _package(tmp_path / rel.replace("/", "_"), {**files, rel: text})
        assert (sources_hash(root) != base) is moves, rel
    # A file moved between training modules changes it too (paths are hashed, not just bytes).
    moved = dict(files)
    moved["training/ranking.py"] = moved.pop("losses/ranking.py")
    assert sources_hash(_package(tmp_path / "moved", moved)) != base
    # This library's own hash is that of its source tree.
    assert training_code_hash() == sources_hash(SRC, TRAINING_CODE)
    assert all((SRC / sub).is_dir() for sub in TRAINING_CODE)
