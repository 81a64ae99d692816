"""AGW / CAJ as settings of the reid family: lr groups and schedule, batch composition, a tiny run."""

from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from rgbir_reid.data.cache import write_cache
from rgbir_reid.data.samplers import CrossModalityIdentitySampler
from rgbir_reid.features import reid_features
from rgbir_reid.models.agw import NonLocalBlock
from rgbir_reid.models.reid import ReidNet
from rgbir_reid.training import reid
from rgbir_reid.training.reid_model import load_reid_model, model_from_settings
from rgbir_reid.training.reid_settings import ReidSettings
from reid_tiny import TINY, sample_records

# The AGW recipe's optimisation (train.py of mangye16/Cross-Modal-Re-ID-baseline): backbone lr 0.01,
# BN neck and classifier 0.1; x(e+1)/10 for epochs 0-9, x1 to 19, x0.1 to 49, x0.01 after.
AGW_OPTIM = dict(lr=0.01, new_layer_lr_factor=10.0, warmup_epochs=9, lr_milestones=(20, 50), lr_gamma=0.1,
                 momentum=0.9, weight_decay=5e-4, epochs=81)
AGW_NET = dict(head="bnneck", pooling="gem", non_local=True, triplet_loss="wrt", lsr_sets=(),
               normalize_embedding=False, weight_cross=0.0, weight_intra=0.0, dropout=0.0)
CAJ_EXTRA = dict(triplet_loss="adp", channel_exchange=True, channel_adaptive_grey=True, channel_erasing=0.5)


def test_lr_groups_and_schedule_at_given_epochs():
    settings = replace(TINY, **AGW_NET, **AGW_OPTIM, train_sets=("real_visible", "real_thermal"))
    model = model_from_settings(settings, 5)
    optimizer = reid._make_optimizer(model, settings)
    backbone, head = optimizer.param_groups
    assert (backbone["lr"], head["lr"]) == (pytest.approx(0.01), pytest.approx(0.1))
    assert {id(p) for p in head["params"]} == {id(model.bn.weight), id(model.classifier.weight)}
    non_local = {id(p) for m in model.modules() if isinstance(m, NonLocalBlock) for p in m.parameters()}
    assert non_local and non_local <= {id(p) for p in backbone["params"]}  # as AGW: non-local at the backbone lr
    assert id(model.bn.bias) not in {id(p) for g in optimizer.param_groups for p in g["params"]}  # frozen
    factor = reid._lr_factor(settings)
    epochs = [0, 4, 8, 9, 10, 19, 20, 49, 50, 80]
    agw = [0.1, 0.5, 0.9, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01]  # adjust_learning_rate's lr / args.lr
    assert [factor(e) for e in epochs] == pytest.approx(agw)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    seen = []
    for _ in range(51):
        seen.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[1]["lr"]))
        optimizer.step()
        scheduler.step()
    assert seen[0] == pytest.approx((0.001, 0.01)) and seen[20] == pytest.approx((0.001, 0.01))
    assert seen[15] == pytest.approx((0.01, 0.1)) and seen[50] == pytest.approx((0.0001, 0.001))


def test_sampler_batches_of_agw_and_caj_views():
    """8 identities x (4 visible + 4 thermal) = 64 per batch (AGW); CAJ's views make 96: each
    visible image twice."""
    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(20), 12)
    modality = np.tile([0] * 7 + [1] * 5, 20)
    sampler = CrossModalityIdentitySampler(pids, modality, num_identities=8, num_instances=4, seed=0, batches_per_epoch=3)
    for batch in sampler:
        batch = np.asarray(batch)
        assert len(batch) == sampler.batch_size == 64
        counts = Counter(zip(pids[batch].tolist(), modality[batch].tolist()))
        assert len({p for p, _ in counts}) == 8 and set(counts.values()) == {4} and len(counts) == 16
        assert len(set(batch.tolist())) == 64  # distinct images (each pool holds >= 4)
    from rgbir_reid.data.channel_augment import ChannelViews

    images = torch.from_numpy(rng.integers(0, 256, (64, 3, 8, 4), dtype=np.uint8))
    mod = torch.from_numpy(modality[batch])
    x, source = ChannelViews(exchange=True, adaptive_grey=True, erasing=0.5)(images.float(), images, mod, lambda u: u.float())
    assert x.shape[0] == 96 and Counter(mod[source].tolist()) == {0: 64, 1: 32}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "cache.h5"
    return write_cache(path, sample_records(), (32, 16), converters={"rgb2ir": lambda x: 255 - x, "ir2rgb": lambda x: 255 - x})


@pytest.mark.parametrize("extra", [{}, CAJ_EXTRA], ids=["agw", "caj"])
def test_tiny_agw_and_caj_runs(cache, tmp_path, monkeypatch, extra):
    """Both recipes train (real images, triplet term in losses.csv) and give test features of the
    chosen kind; CAJ's batches carry 3 P K views."""
    settings = replace(TINY, **{**AGW_NET, **extra}, train_sets=("real_visible", "real_thermal"), epochs=2)
    sizes = []
    forward = ReidNet.forward
    monkeypatch.setattr(ReidNet, "forward", lambda self, x, m: (sizes.append(x.shape[0]) if self.training else None)
                        or forward(self, x, m))
    path = reid.train_reid(cache, tmp_path, settings, device="cpu", seed=0)
    frame = pd.read_csv(tmp_path / "losses.csv")
    assert (frame["loss_triplet"] > 0).all() and frame["loss_cross"].eq(0).all() and np.isfinite(frame["loss_total"]).all()
    p, k = settings.num_identities, settings.num_instances
    assert set(sizes) == {3 * p * k if extra else 2 * p * k}
    model, loaded, _ = load_reid_model(path)
    assert loaded == settings and model.head == "bnneck"
    features, _ = reid_features(path, sample_records()[:4], device="cpu")
    assert features.shape == (4, 512)  # ResNet-18's GeM-pooled width, L2-normalised
    assert np.allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)


def test_agw_settings_errors_name_the_key():
    for key, value in (("head", "fc"), ("pooling", "max"), ("triplet_loss", "hard"), ("test_feature", "fc"),
                       ("non_local_inter_channels", 0), ("channel_erasing", 1.5)):
        with pytest.raises(ValueError, match=key):
            ReidSettings(**{key: value})
