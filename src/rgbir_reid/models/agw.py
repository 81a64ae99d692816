"""The AGW pieces of a re-ID network: non-local attention blocks, GeM pooling and the BN neck.

AGW (Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook", TPAMI
2021, §4; cross-modal code ``mangye16/Cross-Modal-Re-ID-baseline``) and CAJ (Ye et al., ICCV
2021, the same network) add three things to a ResNet-50 whose stem is modality-specific:

* **non-local blocks** (Wang et al., CVPR 2018, dot-product form ``f / N``) after the last two
  blocks of ``layer2`` and the last three of ``layer3`` (the code's ``non_layers = [0, 2, 3, 0]``);
  :func:`insert_non_local` puts them there (:data:`NON_LOCAL_PLACES` per backbone);
* **GeM pooling** (Radenović et al., TPAMI 2019) with the power fixed at ``p = 3``:
  :func:`gem_pool`;
* the **BN neck** (Luo et al., CVPRW 2019, "bag of tricks"): ``BatchNorm1d`` with its bias
  frozen at 0 between the pooled feature and a bias-free classifier; the triplet loss sees the
  pooled feature, the identity loss the normalised one (:func:`bn_neck`).

The network itself is :class:`rgbir_reid.models.reid.ReidNet` with ``head="bnneck"``,
``pooling="gem"`` and ``non_local=True``.
"""

from __future__ import annotations

import torch
from torch import nn

GEM_POWER = 3.0  # AGW code: fixed, not learnt
GEM_EPS = 1e-12  # AGW code: added to the mean before the root

# Stage index (of the stage lists in rgbir_reid.models.reid) -> how many of its last blocks get a
# non-local block after them. ResNet: AGW's layer2 (2) and layer3 (3), stages 2 and 3 of
# [stem, layer1, ..., layer4]. ShuffleNet V2 (ours, the demo's CPU backbone): the stages at the
# same output strides, 8 and 16, which are stage2 and stage3 (indices 1 and 2). Stages with fewer
# blocks get one after each block.
NON_LOCAL_PLACES: dict[str, dict[int, int]] = {
    "resnet18": {2: 2, 3: 3},
    "resnet50": {2: 2, 3: 3},
    "shufflenet_v2_x0_5": {1: 2, 2: 3},
    "shufflenet_v2_x1_0": {1: 2, 2: 3},
}


class NonLocalBlock(nn.Module):
    """Embedded dot-product non-local block with a residual connection (Wang et al., CVPR 2018, eq. 1-6).

    ``z = W(y) + x`` with ``y_i = (1 / N) Σ_j θ(x_i)ᵀ φ(x_j) g(x_j)``, ``N = H·W``; θ, φ, g are
    1x1 convolutions to ``inter_channels`` and ``W`` a 1x1 convolution back to ``channels``
    followed by ``BatchNorm2d`` whose weight and bias start at 0, so a new block is the identity
    (as in the AGW code).

    Args:
        channels: input and output channels ``C``.
        inter_channels: channels of θ, φ, g. The AGW code computes ``reduc_ratio // reduc_ratio
            = 1`` (an acknowledged accident, Cross-Modal-Re-ID-baseline issue #34); its results
            were obtained with 1, so 1 is the faithful value; ``C // 2`` is the non-local paper's.

    Raises:
        ValueError: if ``channels`` or ``inter_channels`` is < 1.
    """

    def __init__(self, channels: int, inter_channels: int = 1) -> None:
        super().__init__()
        if channels < 1 or inter_channels < 1:
            raise ValueError(f"non-local block: channels and inter_channels must be >= 1, got {channels}, {inter_channels}")
        self.inter_channels = inter_channels
        self.theta = nn.Conv2d(channels, inter_channels, 1)
        self.phi = nn.Conv2d(channels, inter_channels, 1)
        self.g = nn.Conv2d(channels, inter_channels, 1)
        self.W = nn.Sequential(nn.Conv2d(inter_channels, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` -> ``[N, C, H, W]``."""
        n, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # [N, HW, C']
        phi = self.phi(x).flatten(2)  # [N, C', HW]
        g = self.g(x).flatten(2).transpose(1, 2)  # [N, HW, C']
        affinity = torch.bmm(theta, phi) / (h * w)  # [N, HW, HW], the f / N of the dot-product form
        y = torch.bmm(affinity, g).transpose(1, 2).reshape(n, self.inter_channels, h, w)
        return x + self.W(y)


def _block_out_channels(block: nn.Module) -> int:
    """Output channels of a ResNet block (its last BatchNorm2d) or a ShuffleNet V2 unit (two
    branches of equal width concatenated, the second ending in a BatchNorm2d)."""
    body = block.branch2 if hasattr(block, "branch2") else block
    norms = [m for m in body.modules() if isinstance(m, nn.BatchNorm2d)]
    if not norms:
        raise ValueError(f"cannot tell the output channels of {type(block).__name__}")
    return norms[-1].num_features * (2 if hasattr(block, "branch2") else 1)


def insert_non_local(stages: list[nn.Module], backbone: str, inter_channels: int | str = 1) -> list[nn.Module]:
    """The stage list with non-local blocks after the blocks :data:`NON_LOCAL_PLACES` names.

    Args:
        stages: the backbone's stages (``nn.Sequential`` of blocks where a block is inserted).
        backbone: a key of :data:`NON_LOCAL_PLACES`.
        inter_channels: an integer ``>= 1``, or ``"half"`` for ``channels // 2``.

    Returns:
        A new list; a stage that gets blocks becomes ``nn.Sequential(block_0, ..., NonLocal, ...)``.

    Raises:
        ValueError: for a backbone with no non-local places (e.g. AlexNet) or a bad
            ``inter_channels``.
    """
    if backbone not in NON_LOCAL_PLACES:
        raise ValueError(f"non_local: no non-local places defined for backbone {backbone!r}; valid: {sorted(NON_LOCAL_PLACES)}")
    if inter_channels != "half" and not (isinstance(inter_channels, int) and inter_channels >= 1):
        raise ValueError(f"non_local_inter_channels: expected an integer >= 1 or 'half', got {inter_channels!r}")
    out = list(stages)
    for index, count in NON_LOCAL_PLACES[backbone].items():
        blocks = list(out[index])
        after = set(range(max(len(blocks) - count, 0), len(blocks)))
        layers: list[nn.Module] = []
        for i, block in enumerate(blocks):
            layers.append(block)
            if i in after:
                c = _block_out_channels(block)
                layers.append(NonLocalBlock(c, max(c // 2, 1) if inter_channels == "half" else inter_channels))
        out[index] = nn.Sequential(*layers)
    return out


def gem_pool(x: torch.Tensor, p: float = GEM_POWER, eps: float = GEM_EPS) -> torch.Tensor:
    """Generalised-mean pooling ``(mean_hw x^p + eps)^(1/p)``: ``[N, C, H, W]`` -> ``[N, C]``.

    AGW's form (the ``eps`` inside the root, no clamp): ``x`` is a post-ReLU map (``>= 0``);
    ``p = 1`` is average pooling and ``p -> inf`` max pooling (Radenović et al., TPAMI 2019, eq. 2).
    """
    return (x.flatten(2).pow(p).mean(-1) + eps).pow(1.0 / p)


class GeMPool(nn.Module):
    """:func:`gem_pool` with a fixed power, as a module (``[N, C, H, W]`` -> ``[N, C]``)."""

    def __init__(self, p: float = GEM_POWER) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gem_pool(x.float(), self.p)  # float32: x^3 of a half-precision map loses range


def bn_neck(features: int, num_classes: int) -> tuple[nn.BatchNorm1d, nn.Linear]:
    """The BN neck and its classifier: ``BatchNorm1d(F)`` (weight ~ N(1, 0.01), bias 0 and frozen)
    and ``Linear(F, C, bias=False)`` (weight ~ N(0, 0.001)), initialised as in the AGW code."""
    bn = nn.BatchNorm1d(features)
    nn.init.normal_(bn.weight, 1.0, 0.01)
    nn.init.zeros_(bn.bias)
    bn.bias.requires_grad_(False)
    classifier = nn.Linear(features, num_classes, bias=False)
    nn.init.normal_(classifier.weight, std=0.001)
    return bn, classifier
