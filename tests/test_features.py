"""Feature extraction: layout of features.h5, unit norm, the training geometry, flip test-time augmentation."""

from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rgbir_reid.data.records import ImageRecord
from rgbir_reid.data.transforms import load_image
from rgbir_reid.features import extract_features, imagenet_normalize, load_test_image
from rgbir_reid.models.reid import build_reid_model
from rgbir_reid.training.reid import train_transform
from rgbir_reid.training.reid_model import save_reid_model
from rgbir_reid.training.reid_settings import ReidSettings

SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sysu_mm01_sample"
SETTINGS = ReidSettings(
    architecture="two_stream_resnet18", pretrained="none", embedding_dim=8,
    image_size=(40, 20), crop_size=(32, 16),
)



def sample_test_records():
    # identities 4 and 5 (the sample's test ids), one RGB and one IR camera each
    return [
        ImageRecord(str(p), int(p.parent.name), cam, "thermal" if cam == 3 else "visible", "test")
        for cam in (1, 3)
        for p in sorted((SAMPLE / f"cam{cam}").glob("000[45]/*.jpg"))
    ]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    model = build_reid_model(SETTINGS.architecture, 2, embedding_dim=8, pretrained="none")
    with torch.no_grad():
        model.thermal_stream[0][0].weight.mul_(-1)  # the two streams must differ
        model.bn.running_mean.uniform_(-0.5, 0.5)  # non-trivial eval statistics
    return save_reid_model(tmp_path_factory.mktemp("m") / "model.pt", model, SETTINGS, [4, 5]), model.eval()


def test_features_layout_unit_norm_geometry_and_flip(model_file, tmp_path):
    path, model = model_file
    records = sample_test_records()
    assert len(records) == 8
    out = extract_features(path, records, tmp_path / "features.h5", batch_size=3, device="cpu")
    with h5py.File(out) as f:
        feats = f["features"][()]
        assert feats.dtype == np.float32 and feats.shape == (8, 8)
        assert f["pid"].dtype == np.int64 and f["pid"][()].tolist() == [r.pid for r in records]
        assert f["camera"][()].tolist() == [1, 1, 1, 1, 3, 3, 3, 3]
        assert f["modality"].dtype == np.int8 and f["modality"][()].tolist() == [0] * 4 + [1] * 4
        assert [p.decode() for p in f["path"][()]] == [r.path for r in records]
        assert not f.attrs["flip"]
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)

    # Training geometry: resized to image_size 40x20, centre 32x16 window (rows 4..35, cols 2..17).
    images = np.stack([load_image(r.path, (40, 20))[4:36, 2:18] for r in records])
    assert np.array_equal(load_test_image(records[0].path, (40, 20), (32, 16)), images[0])
    x = imagenet_normalize(images)
    modality = torch.tensor([0] * 4 + [1] * 4)
    with torch.no_grad():
        plain, _ = model(x, modality)
        mirrored, _ = model(x.flip(3), modality)
    np.testing.assert_allclose(feats, F.normalize(plain, dim=1).numpy(), atol=1e-5)
    # Resizing straight to the crop size (people ~25 % larger here) would give other features.
    straight = imagenet_normalize(np.stack([load_image(r.path, (32, 16)) for r in records]))
    with torch.no_grad():
        assert not np.allclose(feats, F.normalize(model(straight, modality)[0], dim=1).numpy(), atol=1e-3)

    # Flip test-time augmentation: mean of the embeddings of the image and its mirror, normalised.
    flipped = extract_features(path, records, tmp_path / "flipped.h5", batch_size=3, device="cpu", flip=True)
    with h5py.File(flipped) as f:
        feats_flip = f["features"][()]
        assert f.attrs["flip"]
    np.testing.assert_allclose(feats_flip, F.normalize((plain + mirrored) / 2, dim=1).numpy(), atol=1e-5)
    assert not np.allclose(feats_flip, feats, atol=1e-3)


def test_test_image_is_padded_when_the_crop_exceeds_the_resize():
    path = sample_test_records()[0].path
    out = load_test_image(path, (30, 14), (32, 16))
    assert out.shape == (32, 16, 3)
    assert np.array_equal(out[1:31, 1:15], load_image(path, (30, 14)))
    assert not out[0].any() and not out[:, 0].any() and not out[31].any() and not out[:, 15].any()


def test_imagenet_normalize_matches_training_transform():
    img = load_image(sample_test_records()[0].path, (32, 16))
    ours = imagenet_normalize(img[None])[0]
    # The training transform at the image's own size: resize and crop are identities, and
    # with its random flip undone only the conversion and normalisation remain.
    training = train_transform(replace(SETTINGS, image_size=(32, 16), crop_size=(32, 16), crop_padding=0,
                                       random_grayscale=0.0))
    ref = training(torch.from_numpy(img).permute(2, 0, 1)[None])[0]
    assert torch.equal(ours, ref) or torch.equal(ours, ref.flip(2))


def test_bad_inputs(model_file, tmp_path):
    path, _ = model_file
    with pytest.raises(ValueError, match="no test records"):
        extract_features(path, [], tmp_path / "f.h5", device="cpu")
    bogus = tmp_path / "bogus.pt"
    torch.save({"state_dict": {}}, bogus)
    with pytest.raises(ValueError, match="bogus.pt"):
        extract_features(bogus, sample_test_records(), tmp_path / "f.h5", device="cpu")
    assert not (tmp_path / "f.h5").exists()
