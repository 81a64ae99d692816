"""Every registered re-ID network: shapes, finite outputs, a gradient for every parameter."""

import pytest
import torch

from rgbir_reid.models.reid import REID_MODELS, build_reid_model, load_torchvision_backbone



def tiny_input(name):
    # AlexNet needs >= 63 px; ResNets run on re-ID-shaped 32x16 crops.
    h, w = (64, 64) if "alexnet" in name else (32, 16)
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 3, h, w, generator=g), torch.tensor([0, 1, 0, 1])


@pytest.mark.parametrize("name", sorted(REID_MODELS))
def test_registry_model_shapes_finite_and_all_grads(name):
    torch.manual_seed(0)
    model = build_reid_model(name, num_classes=5, embedding_dim=8, pretrained="none")
    x, modality = tiny_input(name)
    emb, logits = model(x, modality)
    assert emb.shape == (4, 8) and logits.shape == (4, 5)
    assert torch.isfinite(emb).all() and torch.isfinite(logits).all()
    (emb.square().mean() + logits.logsumexp(1).mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"
    model.eval()
    with torch.no_grad():
        emb_eval, _ = model(x, modality)
    assert emb_eval.shape == (4, 8) and torch.isfinite(emb_eval).all()


def test_two_stream_routes_by_modality():
    torch.manual_seed(0)
    model = build_reid_model("two_stream_resnet18", num_classes=3, embedding_dim=8, pretrained="none").eval()
    with torch.no_grad():
        # make the thermal stem differ from the visible one
        model.thermal_stream[0][0].weight.mul_(-1)
        x, _ = tiny_input("two_stream_resnet18")
        as_visible, _ = model(x, torch.zeros(4, dtype=torch.long))
        as_thermal, _ = model(x, torch.ones(4, dtype=torch.long))
        mixed, _ = model(x, torch.tensor([0, 1, 1, 0]))
    assert not torch.allclose(as_visible, as_thermal)
    # each sample of a mixed batch equals the pure batch of its modality (eval: no batch coupling)
    torch.testing.assert_close(mixed[[0, 3]], as_visible[[0, 3]])
    torch.testing.assert_close(mixed[[1, 2]], as_thermal[[1, 2]])


def test_one_stream_ignores_modality():
    torch.manual_seed(0)
    model = build_reid_model("one_stream_resnet18", num_classes=3, embedding_dim=8, pretrained="none").eval()
    x, _ = tiny_input("one_stream_resnet18")
    with torch.no_grad():
        a, _ = model(x, torch.zeros(4, dtype=torch.long))
        b, _ = model(x, torch.ones(4, dtype=torch.long))
    assert torch.equal(a, b)


def test_last_stride_doubles_feature_map():
    x = torch.randn(2, 3, 64, 32)
    for stride, expected in ((1, (4, 2)), (2, (2, 1))):
        model = build_reid_model("one_stream_resnet18", 3, pretrained="none", last_stride=stride)
        assert model.shared_deep[:4](model.shared_shallow(x)).shape[-2:] == expected


def test_pretrained_from_local_state_dict(tmp_path):
    torch.manual_seed(1)
    ref = load_torchvision_backbone("resnet18", "none")
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    model = build_reid_model("two_stream_resnet18", 3, pretrained=str(path))
    assert torch.equal(model.visible_stream[0][0].weight, ref.conv1.weight)
    assert torch.equal(model.thermal_stream[0][0].weight, ref.conv1.weight)
    assert torch.equal(model.shared_deep[0][0].conv1.weight, ref.layer1[0].conv1.weight)
    torch.save({"bogus": torch.zeros(1)}, path)
    with pytest.raises(RuntimeError, match="resnet18.pth"):
        build_reid_model("two_stream_resnet18", 3, pretrained=str(path))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_reid_model("two_stream_resnet18", 3, pretrained=str(tmp_path / "missing.pth"))


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="two_stream_resnet50"):
        build_reid_model("two_stream_vgg", 3, pretrained="none")


def test_bad_modality_rejected():
    model = build_reid_model("two_stream_resnet18", 3, pretrained="none")
    with pytest.raises(ValueError, match="modality codes"):
        model(torch.randn(2, 3, 32, 16), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="modality"):
        model(torch.randn(2, 3, 32, 16), torch.tensor([0]))


@pytest.mark.parametrize("backbone", ["alexnet", "resnet18"])
def test_bdtr_layout_has_one_trunk_per_modality_and_shares_only_the_head(backbone):
    # BDTR (CE²L's BaseLine): conv1 through fc6 (+ BN) per modality for AlexNet, the whole
    # ResNet per modality; shared: the embedding (BDTR's fc7), its BN, the classifier.
    model = build_reid_model(f"two_stream_{backbone}", 5, embedding_dim=8, pretrained="none", specific_stages="all")
    tops = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert tops == {"visible_stream", "thermal_stream", "embedding", "bn", "classifier"}
    assert not list(model.shared_deep.parameters())
    visible = dict(model.visible_stream.named_parameters())
    thermal = dict(model.thermal_stream.named_parameters())
    assert visible.keys() == thermal.keys() and len(visible) > 0
    assert all(visible[k].data_ptr() != thermal[k].data_ptr() for k in visible)  # copies, not shared
    if backbone == "alexnet":
        fc6, fc6_bn = model.visible_stream[5][2], model.visible_stream[5][3]
        assert isinstance(fc6, torch.nn.Linear) and (fc6.in_features, fc6.out_features) == (9216, 4096)
        assert isinstance(fc6_bn, torch.nn.BatchNorm1d) and fc6_bn.num_features == 4096
        assert model.embedding.in_features == 4096
        assert not any(isinstance(m, torch.nn.Dropout) for m in model.visible_stream.modules())
    x, modality = tiny_input(f"two_stream_{backbone}")
    emb, logits = model(x, modality)
    assert emb.shape == (4, 8) and logits.shape == (4, 5)


def test_specific_stages_range_per_backbone():
    assert build_reid_model("two_stream_alexnet", 3, pretrained="none", specific_stages=6).two_stream
    for name, too_many in (("two_stream_alexnet", 7), ("two_stream_resnet18", 6)):
        with pytest.raises(ValueError, match="specific_stages"):
            build_reid_model(name, 3, pretrained="none", specific_stages=too_many)
    # The default one-stage split keeps fc6 shared for AlexNet.
    model = build_reid_model("two_stream_alexnet", 3, pretrained="none")
    assert any(isinstance(m, torch.nn.Linear) and m.in_features == 9216 for m in model.shared_deep.modules())


def test_new_parameters_are_the_layers_not_in_the_backbone():
    model = build_reid_model("two_stream_alexnet", 5, embedding_dim=8, pretrained="none", specific_stages="all")
    new = {id(p) for p in model.new_parameters()}
    names = {n for n, p in model.named_parameters() if id(p) in new}
    assert names == {
        "embedding.weight", "embedding.bias", "bn.weight", "bn.bias", "classifier.weight", "classifier.bias",
        "visible_stream.5.3.weight", "visible_stream.5.3.bias", "thermal_stream.5.3.weight", "thermal_stream.5.3.bias",
    }
    resnet = build_reid_model("two_stream_resnet18", 5, embedding_dim=8, pretrained="none")
    assert {n for n, p in resnet.named_parameters() if id(p) in {id(q) for q in resnet.new_parameters()}} == {
        "embedding.weight", "embedding.bias", "bn.weight", "bn.bias", "classifier.weight", "classifier.bias",
    }


# --- Zero-padding (Wu et al. 2017) and the sharing of the deep baselines ------------------------


def test_zero_padding_input_puts_the_grey_image_in_the_channel_of_its_modality():
    from rgbir_reid.models.reid import GREY_MEAN, GREY_STD, IMAGENET_MEAN, IMAGENET_STD, zero_padding_input

    # Pixels in [0, 1]: a pure-red visible image and a mid-grey infrared image.
    rgb = torch.zeros(2, 3, 4, 2)
    rgb[0, 0] = 1.0
    rgb[1] = 0.5
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = zero_padding_input((rgb - mean) / std, torch.tensor([0, 1]))
    assert out.shape == (2, 2, 4, 2)
    # visible: luma of red = 0.299 in channel 0, channel 1 zero
    assert torch.allclose(out[0, 0], torch.full((4, 2), (0.299 - GREY_MEAN) / GREY_STD), atol=1e-5)
    assert torch.equal(out[0, 1], torch.zeros(4, 2))
    # infrared: grey 0.5 in channel 1, channel 0 zero
    assert torch.equal(out[1, 0], torch.zeros(4, 2))
    assert torch.allclose(out[1, 1], torch.full((4, 2), (0.5 - GREY_MEAN) / GREY_STD), atol=1e-5)


@pytest.mark.parametrize("backbone", ["resnet18", "alexnet", "shufflenet_v2_x0_5"])
def test_zero_padding_first_conv_has_two_channels_of_summed_rgb_weights(backbone):
    torch.manual_seed(0)
    plain = build_reid_model(f"one_stream_{backbone}", 3, embedding_dim=8, pretrained="none")
    torch.manual_seed(0)
    zp = build_reid_model(f"one_stream_{backbone}", 3, embedding_dim=8, pretrained="none", zero_padding=True)
    conv_of = lambda m: next(c for c in m.modules() if isinstance(c, torch.nn.Conv2d))  # noqa: E731
    w3, w2 = conv_of(plain).weight, conv_of(zp).weight
    assert w2.shape == (w3.shape[0], 2, *w3.shape[2:])
    assert torch.allclose(w2[:, 0], w3.sum(1)) and torch.allclose(w2[:, 1], w3.sum(1))
    # One channel holds the whole grey image, so a grey image gets the pretrained layer's response.
    grey = torch.rand(1, 1, 64, 64)
    assert torch.allclose(conv_of(zp)(torch.cat([grey, torch.zeros_like(grey)], 1)),
                          conv_of(plain)(grey.repeat(1, 3, 1, 1)), atol=1e-4)
    x, modality = tiny_input(f"one_stream_{backbone}")
    emb, logits = zp(x, modality)
    assert emb.shape == (4, 8) and torch.isfinite(logits).all()


def test_zero_padding_first_conv_channels_learn_from_one_modality_each():
    # Both input channels start from the same weights; what tells the modalities apart is that
    # channel 0's filters only ever see visible images and channel 1's only infrared ones.
    torch.manual_seed(0)
    zp = build_reid_model("one_stream_resnet18", 3, embedding_dim=8, pretrained="none", zero_padding=True)
    conv = next(c for c in zp.modules() if isinstance(c, torch.nn.Conv2d))
    x = torch.randn(2, 3, 32, 16)
    for code, channel in ((0, 0), (1, 1)):
        zp.zero_grad()
        emb, logits = zp(x, torch.tensor([code, code]))
        logits.logsumexp(1).sum().backward()
        assert conv.weight.grad[:, channel].abs().sum() > 0
        assert torch.count_nonzero(conv.weight.grad[:, 1 - channel]) == 0
    assert not [n for n, _ in zp.named_parameters() if "stream" in n]  # nothing else modality-specific
