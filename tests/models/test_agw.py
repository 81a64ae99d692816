"""AGW's network pieces: non-local blocks, GeM, the BN neck, and the ResNet-50 layout at 288x144."""

import pytest
import torch

from rgbir_reid.models.agw import NonLocalBlock, gem_pool
from rgbir_reid.models.reid import ReidNet

AGW = dict(head="bnneck", pooling="gem", non_local=True, pretrained="none", last_stride=1)


def test_gem_pool_by_hand():
    x = torch.tensor([[[[1.0, 2.0]], [[0.0, 3.0]]]])  # [1, 2, 1, 2]
    expected = [((1 + 8) / 2 + 1e-12) ** (1 / 3), ((0 + 27) / 2 + 1e-12) ** (1 / 3)]
    assert gem_pool(x)[0].tolist() == pytest.approx(expected)
    assert gem_pool(x, p=1.0)[0].tolist() == pytest.approx([1.5, 1.5])  # p = 1: average pooling


def test_non_local_block_identity_at_init_and_its_formula():
    torch.manual_seed(0)
    block = NonLocalBlock(4, inter_channels=1).eval()
    x = torch.randn(2, 4, 3, 2)
    assert torch.equal(block(x), x)  # W's BN starts at 0: a new block changes nothing
    with torch.no_grad():
        block.W[1].weight.fill_(1.0)
    # y_i = (1/N) Σ_j θ_i φ_j g_j with one inter channel, then z = x + BN(conv(y)) (eval BN: identity
    # statistics), written out for one sample.
    theta, phi, g = (conv(x[:1]).flatten(2)[0, 0] for conv in (block.theta, block.phi, block.g))
    y = torch.stack([(theta[i] * phi * g).sum() / 6 for i in range(6)]).view(1, 1, 3, 2)
    expected = x[:1] + block.W[1](block.W[0](y))
    assert torch.allclose(block(x)[:1], expected, atol=1e-6)


@pytest.fixture(scope="module")
def agw_resnet50():
    torch.manual_seed(0)
    return ReidNet("resnet50", 7, two_stream=True, specific_stages=1, **AGW)


def test_agw_resnet50_at_288x144(agw_resnet50):
    """The published network: only the stem per modality, non-local blocks after layer2 blocks 2, 3
    and layer3 blocks 3, 4, 5, GeM, BN neck (frozen bias), bias-free classifier; pooled feature in
    training, the BN-neck feature in eval; one forward each, batch 2 (one visible, one thermal)."""
    net = agw_resnet50
    specific = {n.split(".")[0] for n, _ in net.named_parameters() if n.startswith(("visible_stream", "thermal_stream"))}
    assert specific == {"visible_stream", "thermal_stream"}
    stem = {"0.0.weight", "0.1.weight", "0.1.bias"}  # conv1 and bn1 of ResNet-50, nothing else
    assert {n for n, _ in net.visible_stream.named_parameters()} == stem
    assert {n for n, _ in net.thermal_stream.named_parameters()} == stem
    layer2, layer3 = net.shared_deep[1], net.shared_deep[2]  # shared_deep = layer1..layer4, pool
    kinds = lambda stage: ["NL" if isinstance(m, NonLocalBlock) else "B" for m in stage]  # noqa: E731
    assert kinds(layer2) == ["B", "B", "B", "NL", "B", "NL"]
    assert kinds(layer3) == ["B", "B", "B", "B", "NL", "B", "NL", "B", "NL"]
    assert [m.inter_channels for m in net.modules() if isinstance(m, NonLocalBlock)] == [1] * 5
    assert not any(isinstance(m, NonLocalBlock) for s in (net.shared_deep[0], net.shared_deep[3]) for m in s.modules())
    assert net.classifier.bias is None and net.classifier.weight.shape == (7, 2048)
    assert not net.bn.bias.requires_grad and net.bn.weight.requires_grad
    assert {id(p) for p in net.new_parameters()} == {id(net.bn.weight), id(net.bn.bias), id(net.classifier.weight)}

    x, modality = torch.randn(2, 3, 288, 144), torch.tensor([0, 1])
    with torch.no_grad():
        net.train()
        pooled, logits = net(x, modality)
        assert pooled.shape == (2, 2048) and logits.shape == (2, 7)
        assert (pooled > 0).all()  # GeM of a post-ReLU map
        net.eval()
        seen = []
        hook = net.shared_deep.register_forward_hook(lambda m, i, out: seen.append(out))
        feature, _ = net(x, modality)
        hook.remove()
        # Eval: the BN neck (running statistics) of the pooled feature of that same forward.
        bn = net.bn
        expected = (seen[0] - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    assert feature.shape == (2, 2048) and torch.allclose(feature, expected, atol=1e-5)
    assert not torch.allclose(feature, seen[0])


def test_test_feature_pooled_or_bnneck():
    torch.manual_seed(0)
    net = ReidNet("resnet18", 3, two_stream=True, **AGW).eval()
    x, modality = torch.randn(4, 3, 64, 32), torch.tensor([0, 1, 0, 1])
    with torch.no_grad():
        bnneck, _ = net(x, modality)
        net.test_feature = "pooled"
        pooled, _ = net(x, modality)
    assert torch.allclose(bnneck, net.bn(pooled), atol=1e-6)
    assert torch.allclose(pooled, gem_pool(net.shared_deep[:-1](net._shallow(x, modality))), atol=1e-5)


def test_non_local_places_on_the_demo_backbone_and_bad_options():
    net = ReidNet("shufflenet_v2_x0_5", 3, two_stream=True, **AGW)
    stage2, stage3 = net.shared_deep[0], net.shared_deep[1]  # torchvision stage2 (4 units), stage3 (8 units)
    assert sum(isinstance(m, NonLocalBlock) for m in stage2) == 2 and isinstance(stage2[-1], NonLocalBlock)
    assert sum(isinstance(m, NonLocalBlock) for m in stage3) == 3 and isinstance(stage3[-1], NonLocalBlock)
    assert [m.W[1].num_features for m in stage2 if isinstance(m, NonLocalBlock)] == [48, 48]
    with pytest.raises(ValueError, match="no non-local places"):
        ReidNet("alexnet", 3, two_stream=True, non_local=True, pretrained="none")
    with pytest.raises(ValueError, match="head must be one of"):
        ReidNet("resnet18", 3, two_stream=True, head="fc", pretrained="none")
