"""Re-ID networks: one-stream and two-stream torchvision backbones with an embedding head.

A backbone is cut into *stages* (ResNet: stem, layer1..layer4; ShuffleNet V2: conv1 +
max-pool, stage2..stage4, conv5; AlexNet: its five conv blocks and fc6, the last as
pooling + fc6 + ``BatchNorm1d`` + ReLU). In a **two-stream** network the first
``specific_stages`` stages exist twice, one copy for visible and one for thermal input, and
each sample is routed by its modality (0 visible, 1 thermal: the modality its pixels show);
the remaining stages, the pooling and the head are shared. A **one-stream** network shares
everything and ignores the modality.

``specific_stages = len(stages)`` (6 for AlexNet, 5 for the others; ``"all"`` says so) is
the layout of BDTR (Ye et al., IJCAI 2018), CE²L's BaseLine: one whole trunk per modality —
for AlexNet conv1 through fc6 with BN after fc6, as BDTR's code has it — and only the
embedding (BDTR's fc7; here ``Linear`` + BN) and the identity classifier shared. The paper
configs use it. torchvision AlexNet's fc7 and its two dropouts are not used: BDTR's fc7 is a
new 4096 -> D layer (our embedding), and the only dropout is the head's, before the
classifier, so the ranking losses see the embedding without dropout noise.

Head (both kinds): pooled backbone feature ``[N, F]`` -> ``Linear(F, embedding_dim)`` ->
``BatchNorm1d`` = the embedding ``[N, D]`` (used by the ranking losses and, in eval mode,
as the re-ID feature) -> ``Dropout(dropout)`` -> ``Linear(D, num_classes)`` = identity logits.

**Zero-padding** input (Wu et al., ICCV 2017, "deep zero-padding"; ``zero_padding=True``): the
network sees two channels instead of three. A visible image is turned grey (ITU-R 601 luma)
into channel 0 with channel 1 zero; an infrared image goes grey into channel 1 with channel 0
zero, so one set of weights can still tell the modalities apart. :func:`zero_padding_input`
builds that input from the usual ImageNet-normalised RGB batch; the grey channel is
normalised with the luma of the ImageNet mean and std, so "zero" is the mean grey level.
The first convolution's pretrained weights become two channels, each the **sum** of its RGB
weights: since one channel carries the whole grey image, that reproduces the pretrained
layer's response to a grey image (our choice; the project notes recommend the mean, which
scales the response by 1/3 and which the BN after conv1 would mostly absorb).

**AGW / CAJ options** (:mod:`rgbir_reid.models.agw`): ``non_local=True`` inserts non-local
blocks at AGW's places, ``pooling="gem"`` pools with GeM (p = 3), and ``head="bnneck"``
replaces the embedding head by AGW's BN neck: pooled feature ``[N, F]`` -> ``BatchNorm1d``
(bias frozen) -> bias-free ``Linear(F, C)``; in training the network then returns the pooled
feature (what AGW's triplet loss sees), in eval mode the test feature ``test_feature`` names:
``"bnneck"`` (the normalised feature, AGW's "FC"; for the embedding head, the embedding as
before) or ``"pooled"`` (the pooled backbone feature, AGW's "POOL"). The defaults leave the
network as it was.

Minimum input sizes: ResNet and ShuffleNet V2 any size ≥ 32x16; AlexNet ≥ 63x63 (paper setting 227x227).
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path
from typing import Callable

import torch
import torchvision
from torch import nn

from rgbir_reid.data.records import MODALITY_CODE, THERMAL, VISIBLE
from rgbir_reid.models.agw import GeMPool, bn_neck, insert_non_local

HEADS = ("embedding", "bnneck")
POOLINGS = ("avg", "gem")
TEST_FEATURES = ("bnneck", "pooled")

# Input normalisation of every torchvision ImageNet model: (x / 255 - mean) / std per RGB channel
# (applied by rgbir_reid.data.transforms.normalize, in training and at test time).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ITU-R 601 luma weights, and the luma of the ImageNet mean and std (the grey channel's normalisation).
LUMA = (0.299, 0.587, 0.114)
GREY_MEAN = sum(w * m for w, m in zip(LUMA, IMAGENET_MEAN))
GREY_STD = sum(w * s for w, s in zip(LUMA, IMAGENET_STD))


def zero_padding_input(x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """The two-channel zero-padding input of Wu et al. (ICCV 2017) from a normalised RGB batch.

    Args:
        x: ImageNet-normalised images ``[N, 3, H, W]`` (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`).
        modality: int ``[N]``, 0 visible / 1 thermal (the modality the pixels show).

    Returns:
        ``[N, 2, H, W]``: the grey image (luma of the de-normalised pixels, then
        ``(grey - GREY_MEAN) / GREY_STD``) in channel ``modality`` and zeros in the other.
    """
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    grey = ((x * std + mean) * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    grey = (grey - GREY_MEAN) / GREY_STD
    thermal = (modality == MODALITY_CODE[THERMAL]).view(-1, 1, 1, 1).to(x.dtype)
    return torch.cat([grey * (1 - thermal), grey * thermal], dim=1)


def _two_channel_first_conv(module: nn.Module) -> None:
    """Replace the first ``Conv2d`` of ``module`` by a 2-input-channel one whose weights per
    channel are the sum of the original RGB weights (see the module docstring)."""
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                conv = nn.Conv2d(2, child.out_channels, child.kernel_size, child.stride, child.padding,
                                 child.dilation, child.groups, child.bias is not None)
                with torch.no_grad():
                    conv.weight.copy_(child.weight.sum(1, keepdim=True).repeat(1, 2, 1, 1))
                    if child.bias is not None:
                        conv.bias.copy_(child.bias)
                setattr(parent, name, conv)
                return
    raise ValueError("the backbone has no convolution to adapt to two input channels")



# torchvision constructor and the ImageNet weights used for ``pretrained="imagenet"``.
BACKBONES: dict[str, tuple[Callable[..., nn.Module], object]] = {
    "resnet18": (torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet50": (torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
    "alexnet": (torchvision.models.alexnet, torchvision.models.AlexNet_Weights.IMAGENET1K_V1),
    # ShuffleNet V2 (Ma et al., ECCV 2018): the CPU-sized backbone (at 64x32 pixels, 0.5x trains
    # about 6x as many images per second as ResNet-18 on two cores); the demo uses it.
    "shufflenet_v2_x0_5": (torchvision.models.shufflenet_v2_x0_5, torchvision.models.ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1),
    "shufflenet_v2_x1_0": (torchvision.models.shufflenet_v2_x1_0, torchvision.models.ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1),
}


def load_torchvision_backbone(name: str, pretrained: str) -> nn.Module:
    """A torchvision classification model with the requested initial weights.

    Args:
        name: a key of :data:`BACKBONES`.
        pretrained: ``"imagenet"`` (torchvision's ImageNet weights, downloaded once into the
            torch hub cache), ``"none"`` (random init), or the path of a local state-dict file
            with torchvision key names (e.g. the downloaded ``.pth``).

    Raises:
        ValueError: unknown backbone name (lists valid ones).
        FileNotFoundError: ``pretrained`` is neither keyword nor an existing file.
        RuntimeError: the state-dict file does not match the backbone (names the file).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid: {sorted(BACKBONES)}")
    ctor, weights = BACKBONES[name]
    if pretrained == "imagenet":
        return ctor(weights=weights)
    model = ctor(weights=None)
    if pretrained == "none":
        return model
    path = Path(pretrained)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained: expected 'imagenet', 'none' or a state-dict file; {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise RuntimeError(f"pretrained weights {path} do not fit torchvision {name}: {e}") from e
    return model


def _resnet_stages(model: nn.Module, last_stride: int) -> tuple[list[nn.Module], nn.Module, int]:
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
    if last_stride == 1:
        # A stride-1 last stage doubles the final feature map (finer detail for re-ID).
        block = model.layer4[0]
        strided = block.conv2 if hasattr(block, "conv3") else block.conv1  # Bottleneck vs BasicBlock
        strided.stride = (1, 1)
        block.downsample[0].stride = (1, 1)
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    stages = [stem, model.layer1, model.layer2, model.layer3, model.layer4]
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    return stages, pool, model.fc.in_features


def _alexnet_stages(model: nn.Module, last_stride: int) -> tuple[list[nn.Module], nn.Module, int]:
    f = model.features
    fc6 = model.classifier[1]  # Linear(9216, 4096), pretrained with the conv layers
    # BDTR: fc6 followed by batch normalisation; its ReLU (AlexNet's own) after the BN.
    fc6_bn = nn.BatchNorm1d(fc6.out_features)
    fc6_bn.rgbir_new_layer = True  # not in the ImageNet weights (see ReidNet.new_parameters)
    fc6_stage = nn.Sequential(model.avgpool, nn.Flatten(1), fc6, fc6_bn, nn.ReLU(inplace=True))
    stages = [f[0:3], f[3:6], f[6:8], f[8:10], f[10:13], fc6_stage]
    return stages, nn.Identity(), fc6.out_features


def _shufflenet_stages(model: nn.Module, last_stride: int) -> tuple[list[nn.Module], nn.Module, int]:
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
    if last_stride == 1:
        # The first unit of stage4 halves the map in both of its depthwise convolutions; at
        # stride 1 it keeps the map (the unit still concatenates its two branches).
        unit = model.stage4[0]
        for branch in (unit.branch1, unit.branch2):
            for layer in branch:
                if isinstance(layer, nn.Conv2d) and layer.stride == (2, 2):
                    layer.stride = (1, 1)
    stem = nn.Sequential(model.conv1, model.maxpool)
    stages = [stem, model.stage2, model.stage3, model.stage4, model.conv5]
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    return stages, pool, model.fc.in_features


STAGE_SPLITTERS = {
    "resnet18": _resnet_stages,
    "resnet50": _resnet_stages,
    "alexnet": _alexnet_stages,
    "shufflenet_v2_x0_5": _shufflenet_stages,
    "shufflenet_v2_x1_0": _shufflenet_stages,
}


class ReidNet(nn.Module):
    """One- or two-stream re-ID network (see the module docstring for the layout).

    Args:
        backbone: a key of :data:`BACKBONES` (``"resnet18"``, ``"resnet50"``, ``"alexnet"``,
            ``"shufflenet_v2_x0_5"``, ``"shufflenet_v2_x1_0"``).
        num_classes: training identities ``C`` (classifier outputs).
        two_stream: modality-specific shallow stages if True, all shared if False.
        specific_stages: leading stages that are modality-specific (1 = ResNet stem /
            AlexNet conv1 block; up to the number of stages, 6 for AlexNet and 5 for the
            others: the BDTR layout with one whole trunk per modality, which ``"all"`` gives
            for any backbone). Ignored when
            ``two_stream`` is False.
        embedding_dim: ``D``.
        dropout: dropout before the identity classifier (paper: 0.5).
        pretrained: ``"imagenet"``, ``"none"`` or a torchvision state-dict file.
        last_stride: 1 or 2, stride of the last ResNet / ShuffleNet stage (ignored for AlexNet).
        zero_padding: feed the two-channel zero-padding input (:func:`zero_padding_input`;
            Wu et al.'s deep zero-padding is this with ``two_stream=False``).
        head: ``"embedding"`` (Linear + BN + dropout + Linear) or ``"bnneck"`` (AGW's BN neck
            and bias-free classifier on the pooled feature; ``embedding_dim`` unused).
        pooling: ``"avg"`` or ``"gem"`` (GeM, p = 3; not for AlexNet, whose fc6 pools).
        non_local: insert non-local blocks (:func:`rgbir_reid.models.agw.insert_non_local`).
        non_local_inter_channels: their θ/φ/g width, an integer or ``"half"`` (``C // 2``).
        test_feature: the eval-mode feature, ``"bnneck"`` or ``"pooled"`` (module docstring).

    Raises:
        ValueError: on an unknown backbone or out-of-range sizes.
    """

    def __init__(
        self,
        backbone: str,
        num_classes: int,
        *,
        two_stream: bool,
        specific_stages: int | str = 1,
        embedding_dim: int = 512,
        dropout: float = 0.5,
        pretrained: str = "imagenet",
        last_stride: int = 1,
        zero_padding: bool = False,
        head: str = "embedding",
        pooling: str = "avg",
        non_local: bool = False,
        non_local_inter_channels: int | str = 1,
        test_feature: str = "bnneck",
    ) -> None:
        super().__init__()
        for key, value, valid in (("head", head, HEADS), ("pooling", pooling, POOLINGS),
                                  ("test_feature", test_feature, TEST_FEATURES)):
            if value not in valid:
                raise ValueError(f"{key} must be one of {valid}, got {value!r}")
        if num_classes < 1 or embedding_dim < 1:
            raise ValueError(f"num_classes and embedding_dim must be >= 1, got {num_classes}, {embedding_dim}")
        if backbone not in STAGE_SPLITTERS:
            raise ValueError(f"unknown backbone {backbone!r}; valid: {sorted(STAGE_SPLITTERS)}")
        stages, pool, feature_dim = STAGE_SPLITTERS[backbone](load_torchvision_backbone(backbone, pretrained), last_stride)
        if non_local:
            stages = insert_non_local(stages, backbone, non_local_inter_channels)
        if pooling == "gem":
            if backbone == "alexnet":
                raise ValueError("pooling 'gem' needs a convolutional last stage; AlexNet's fc6 pools itself")
            pool = GeMPool()
        if specific_stages == "all":
            specific_stages = len(stages)
        if not isinstance(specific_stages, int) or not 1 <= specific_stages <= len(stages):
            raise ValueError(f"specific_stages must be in 1..{len(stages)} (or 'all') for {backbone}, got {specific_stages}")
        self.two_stream = two_stream
        self.zero_padding = zero_padding
        shallow = nn.Sequential(*stages[:specific_stages])
        if zero_padding:
            _two_channel_first_conv(shallow)
        if two_stream:
            # Both streams start from the same (e.g. ImageNet) weights and then diverge.
            self.visible_stream = shallow
            self.thermal_stream = copy.deepcopy(shallow)
        else:
            self.shared_shallow = shallow
        self.shared_deep = nn.Sequential(*stages[specific_stages:], pool)
        self.head, self.test_feature = head, test_feature
        self.dropout = nn.Dropout(dropout)
        if head == "bnneck":
            self.embedding = nn.Identity()
            self.bn, self.classifier = bn_neck(feature_dim, num_classes)
            return
        self.embedding = nn.Linear(feature_dim, embedding_dim)
        self.bn = nn.BatchNorm1d(embedding_dim)
        self.classifier = nn.Linear(embedding_dim, num_classes)
        nn.init.kaiming_normal_(self.embedding.weight, mode="fan_out")
        nn.init.zeros_(self.embedding.bias)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.zeros_(self.classifier.bias)

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters of the layers this network adds to the backbone (none of them pretrained).

        The embedding, its BN and the identity classifier, and AlexNet's BN after fc6 in
        every stream. Training can give them a larger learning rate than the pretrained
        layers (``ReidSettings.new_layer_lr_factor``, as Ye et al.'s PyTorch baselines do).
        """
        new = [self.embedding, self.bn, self.classifier]
        new += [m for m in self.modules() if getattr(m, "rgbir_new_layer", False)]
        return [p for m in new for p in m.parameters()]

    def _shallow(self, x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        if not self.two_stream:
            return self.shared_shallow(x)
        is_visible = modality == MODALITY_CODE[VISIBLE]
        idx_v = is_visible.nonzero().squeeze(1)
        idx_t = (~is_visible).nonzero().squeeze(1)
        parts, order = [], []
        if idx_v.numel():
            parts.append(self.visible_stream(x[idx_v]))
            order.append(idx_v)
        if idx_t.numel():
            parts.append(self.thermal_stream(x[idx_t]))
            order.append(idx_t)
        # Put the samples back into input order.
        return torch.cat(parts)[torch.argsort(torch.cat(order))]

    def forward(self, x: torch.Tensor, modality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed a batch.

        Args:
            x: images ``[N, 3, H, W]``, ImageNet-normalised float.
            modality: int ``[N]``, 0 visible / 1 thermal (routes each sample in a two-stream net).

        Returns:
            ``(embedding [N, D], logits [N, C])``. In eval mode the embedding (batch norm with
            running statistics, before dropout) is the re-ID feature. With ``head="bnneck"``
            the first output is the pooled feature ``[N, F]`` in training and the
            ``test_feature`` in eval mode; with ``test_feature="pooled"`` the eval-mode first
            output is the pooled feature for either head.

        Raises:
            ValueError: on a batch/modality mismatch or a modality code other than 0 or 1.
        """
        if x.ndim != 4 or modality.shape != (x.shape[0],):
            raise ValueError(f"expected x [N, 3, H, W] and modality [N], got {tuple(x.shape)} and {tuple(modality.shape)}")
        if self.two_stream and bool(((modality != MODALITY_CODE[VISIBLE]) & (modality != MODALITY_CODE[THERMAL])).any()):
            raise ValueError("modality codes must be 0 (visible) or 1 (thermal)")
        if self.zero_padding:
            x = zero_padding_input(x, modality)
        pooled = self.shared_deep(self._shallow(x, modality))
        emb = self.bn(self.embedding(pooled))
        logits = self.classifier(self.dropout(emb))
        if not self.training and self.test_feature == "pooled":
            return pooled, logits
        if self.training and self.head == "bnneck":
            return pooled, logits  # the BN neck: the metric loss sees the feature before the BN
        return emb, logits


def _build(backbone: str, two_stream: bool, num_classes: int, **kwargs) -> ReidNet:
    return ReidNet(backbone, num_classes, two_stream=two_stream, **kwargs)


REID_MODELS: dict[str, Callable[..., ReidNet]] = {
    f"{kind}_{backbone}": partial(_build, backbone, kind == "two_stream")
    for kind in ("two_stream", "one_stream")
    for backbone in BACKBONES
}


def build_reid_model(
    name: str,
    num_classes: int,
    *,
    embedding_dim: int = 512,
    dropout: float = 0.5,
    pretrained: str = "imagenet",
    last_stride: int = 1,
    specific_stages: int | str = 1,
    zero_padding: bool = False,
    **agw_options,
) -> ReidNet:
    """Build a registered re-ID network by name (``two_stream_resnet50``, ``one_stream_alexnet``, ...).

    Arguments are those of :class:`ReidNet` (``agw_options``: ``head``, ``pooling``,
    ``non_local``, ``non_local_inter_channels``, ``test_feature``).

    Raises:
        ValueError: if ``name`` is not in :data:`REID_MODELS` (the message lists valid names).
    """
    if name not in REID_MODELS:
        raise ValueError(f"unknown re-ID architecture {name!r}; valid: {sorted(REID_MODELS)}")
    return REID_MODELS[name](
        num_classes,
        embedding_dim=embedding_dim,
        dropout=dropout,
        pretrained=pretrained,
        last_stride=last_stride,
        specific_stages=specific_stages,
        zero_padding=zero_padding,
        **agw_options,
    )
