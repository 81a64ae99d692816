"""Published results shown beside ours, as data (percent, as printed in the papers).

Rows follow the comparison table of CE²L (Dai et al., "RGB-Infrared Person Re-identification via
Image Modality Conversion"): RegDB (visible->thermal) and SYSU-MM01 (all-search single-shot),
columns rank-1, rank-10, rank-20, mAP. A value is ``None`` where we could not check it; fill
it from the cited paper rather than guessing.

``checked`` tells where each number came from: ``"brief"`` = given to this project with its
source; ``"recalled"`` = recalled from the cited table (the widely copied comparison table of
Ye et al. 2018), to be checked against the paper before publication.
"""

from __future__ import annotations

from dataclasses import dataclass

# The settings of the papers' comparison table, as protocol strings of the metric rows.
PAPER_PROTOCOLS = {"regdb": "regdb visible->thermal", "sysu_mm01": "sysu_mm01 all-search single-shot"}

SOURCES: dict[str, str] = {
    "wu2017": 'A. Wu, W.-S. Zheng, H.-X. Yu, S. Gong, J. Lai. "RGB-Infrared Cross-Modality Person Re-Identification". ICCV 2017.',
    "ye2018hcml": 'M. Ye, X. Lan, J. Li, P. C. Yuen. "Hierarchical Discriminative Learning for Visible Thermal Person Re-Identification". AAAI 2018.',
    "ye2018bdtr": 'M. Ye, Z. Wang, X. Lan, P. C. Yuen. "Visible Thermal Person Re-Identification via Dual-Constrained Top-Ranking". IJCAI 2018.',
    "wang2019d2rl": 'Z. Wang, Z. Wang, Y. Zheng, Y.-Y. Chuang, S. Satoh. "Learning to Reduce Dual-level Discrepancy for Infrared-Visible Person Re-identification". CVPR 2019.',
    "wang2019aligngan": 'G. Wang, T. Zhang, J. Cheng, S. Liu, Y. Yang, Z. Hou. "RGB-Infrared Cross-Modality Person Re-Identification via Joint Pixel and Feature Alignment". ICCV 2019.',
    "dai_ce2l": 'Dai et al. "RGB-Infrared Person Re-identification via Image Modality Conversion" (CE²L).',
}


@dataclass(frozen=True)
class PublishedResult:
    """One published result row on one dataset (values in percent; None = not filled in)."""

    method: str
    dataset_format: str  # "regdb" or "sysu_mm01"
    protocol: str  # e.g. "regdb visible->thermal", "sysu_mm01 all-search single-shot"
    rank1: float | None
    rank10: float | None
    rank20: float | None
    mAP: float | None
    source: str  # key of SOURCES
    checked: str  # "brief" or "recalled"


_R = "regdb"
_S = "sysu_mm01"
_RP = PAPER_PROTOCOLS[_R]
_SP = PAPER_PROTOCOLS[_S]

# Order = row order of the CE²L comparison table (plus BDTR and AlignGAN, cited alongside).
PUBLISHED_RESULTS: tuple[PublishedResult, ...] = (
    PublishedResult("LOMO", _R, _RP, 0.85, 2.47, 4.10, 2.28, "ye2018hcml", "recalled"),
    PublishedResult("LOMO", _S, _SP, 1.75, 14.14, 26.63, 3.48, "wu2017", "brief"),
    PublishedResult("MLBP", _R, _RP, 2.02, 7.33, 10.90, 6.77, "ye2018hcml", "recalled"),
    PublishedResult("MLBP", _S, _SP, 2.12, 16.23, 28.32, 3.86, "ye2018hcml", "recalled"),
    PublishedResult("HOG", _R, _RP, 13.49, 33.22, 43.66, 10.31, "ye2018hcml", "recalled"),
    PublishedResult("HOG", _S, _SP, 2.76, 18.25, 31.91, 4.24, "wu2017", "brief"),
    PublishedResult("GSM", _R, _RP, 17.28, 34.47, 45.26, 15.06, "ye2018hcml", "recalled"),
    PublishedResult("GSM", _S, _SP, 5.29, 33.71, 52.95, 8.00, "ye2018hcml", "recalled"),
    PublishedResult("One-stream", _R, _RP, 13.11, 32.98, 42.51, 14.02, "ye2018hcml", "recalled"),
    PublishedResult("One-stream", _S, _SP, 12.04, 49.68, 66.74, 13.67, "wu2017", "brief"),
    PublishedResult("Two-stream", _R, _RP, 12.43, 30.36, 40.96, 13.42, "ye2018hcml", "recalled"),
    PublishedResult("Two-stream", _S, _SP, 11.65, 47.99, 65.50, 12.85, "wu2017", "brief"),
    PublishedResult("Zero-Padding", _R, _RP, 17.75, 34.21, 44.35, 18.90, "ye2018hcml", "recalled"),
    PublishedResult("Zero-Padding", _S, _SP, 14.80, 54.12, 71.33, 15.95, "wu2017", "brief"),
    PublishedResult("TONE", _R, _RP, 16.87, 34.03, 44.10, 14.92, "ye2018hcml", "recalled"),
    PublishedResult("TONE", _S, _SP, 12.52, 50.72, 68.60, 14.42, "ye2018hcml", "recalled"),
    PublishedResult("HCML", _R, _RP, 24.44, 47.53, 56.78, 20.08, "ye2018hcml", "brief"),
    PublishedResult("HCML", _S, _SP, 14.32, 53.16, 69.17, 16.16, "ye2018hcml", "brief"),
    PublishedResult("BDTR", _R, _RP, 33.47, 58.42, 67.52, 31.83, "ye2018bdtr", "brief"),
    PublishedResult("BDTR", _S, _SP, 17.01, 55.43, 71.96, 19.66, "ye2018bdtr", "brief"),
    PublishedResult("D²RL", _R, _RP, 43.4, 66.1, 76.3, 44.1, "wang2019d2rl", "brief"),
    PublishedResult("D²RL", _S, _SP, 28.9, 70.6, 82.4, 29.2, "wang2019d2rl", "brief"),
    PublishedResult("AlignGAN", _S, _SP, 42.4, 85.0, 93.7, 40.7, "wang2019aligngan", "brief"),
    PublishedResult("BaseLine (CE²L paper)", _R, _RP, None, None, None, None, "dai_ce2l", "brief"),
    PublishedResult("BaseLine (CE²L paper)", _S, _SP, None, None, None, None, "dai_ce2l", "brief"),
    PublishedResult("CE²L", _R, _RP, 47.50, None, None, 44.21, "dai_ce2l", "brief"),
    PublishedResult("CE²L", _S, _SP, 29.52, None, None, 28.43, "dai_ce2l", "brief"),
)
