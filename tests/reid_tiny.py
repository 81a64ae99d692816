"""What the re-ID training tests share: the real SYSU-MM01 sample images and tiny settings."""

from __future__ import annotations

from pathlib import Path

import torch

from rgbir_reid.data.records import ImageRecord
from rgbir_reid.training.reid_settings import ReidSettings

SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sysu_mm01_sample"
THERMAL_CAMERAS = (3, 6)

# A two-stream ResNet-18 on 32x16 crops, a few steps: seconds on one CPU thread.
TINY = ReidSettings(
    architecture="two_stream_resnet18",
    pretrained="none",
    embedding_dim=16,
    image_size=(32, 16),
    crop_size=(32, 16),
    crop_padding=2,
    num_identities=2,
    num_instances=2,
    batches_per_epoch=2,
    epochs=3,
    lr=0.01,
    warmup_epochs=1,
    lr_milestones=(2,),
    num_workers=0,
)


def sample_records() -> list[ImageRecord]:
    """The 60 sample images as training records (cameras 3 and 6 thermal)."""
    return [
        ImageRecord(str(p), int(p.parent.name), int(p.parent.parent.name[3:]),
                    "thermal" if int(p.parent.parent.name[3:]) in THERMAL_CAMERAS else "visible", "train")
        for p in sorted(SAMPLE.glob("cam*/*/*.jpg"))
    ]


def assert_same_weights(a: Path, b: Path) -> None:
    """The ``model.pt`` files ``a`` and ``b`` hold bit-identical weights."""
    wa = torch.load(a, weights_only=True)["state_dict"]
    wb = torch.load(b, weights_only=True)["state_dict"]
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"weights differ: {different[:5]}"
