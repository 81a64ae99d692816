"""Published results shown beside ours, as data (percent, as printed in the papers).

Most rows are the comparison table of CE²L (Dai et al., "RGB-Infrared Person Re-identification
via Image Modality Conversion"), taken cell for cell from
``shared/data/published/ce2l_comparison_table.csv`` (described by the README beside it): RegDB
visible->thermal and SYSU-MM01 all-search single-shot, each with rank-1, rank-10, rank-20 and
mAP. Method names follow the CSV, with the superscripts typeset (D²RL, CE²L). The CSV's
"BaseLine" row, the method CE²L builds on, is BDTR (Ye et al., IJCAI 2018, the CE²L paper's
reference [4]); it is named "BDTR (CE²L's BaseLine)" here so that it is recognisable in both
roles. AlignGAN is not in the CE²L table; its four SYSU-MM01 modes come from its own paper.
AGW and CAJ (Ye et al.) come from the READMEs of their official code, with mINP; their SYSU-MM01
numbers are on that code's own gallery (one random image per identity and camera, seeds 0-9,
single-shot) and its checkpoint was chosen on test trial 0, so they compare with our seeded
single-shot rows only roughly (see docs/methods/agw-caj.md).

``protocol`` is a protocol string of our metric rows without the sampler ("official", "seeded")
or the "indoor-ids" tag, e.g. ``"sysu_mm01 all-search multi-shot"``. A report table shows the
published rows whose protocol its own protocol starts with (see
:mod:`rgbir_reid.reporting.tables`).

``checked`` says where each number was taken from; the values are the keys of :data:`CHECKED`:

- ``"ce2l_table"``: the CE²L paper's comparison table (the shared CSV, cell for cell);
- ``"paper_table"``: a results table of the paper named by ``source`` (AlignGAN: its Table 2);
- ``"code_readme"``: the results table of the README of the method's official code
  (AGW: ``mangye16/Cross-Modal-Re-ID-baseline``; CAJ: its ``ICCV21_CAJ/README.md``);
- ``"recalled"``: recalled rather than read from a paper, to be checked against the cited paper
  before publication (the report marks such sources with "*"). AGW's indoor-search row is: its
  rank-1 and mAP are confirmed by a results table of the AGW project, its mINP is not.

``source`` is the key in :data:`SOURCES` of the paper that first reported the row's numbers;
for rows of the CE²L table that is this project's attribution (the CSV's ``ref`` column cites
the method, not the paper the numbers come from).
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
    "ye2021agw": 'M. Ye, J. Shen, G. Lin, T. Xiang, L. Shao, S. C. H. Hoi. "Deep Learning for Person Re-identification: A Survey and Outlook". IEEE TPAMI 2021 (AGW; code github.com/mangye16/Cross-Modal-Re-ID-baseline).',
    "ye2021caj": 'M. Ye, W. Ruan, B. Du, M. Z. Shou. "Channel Augmented Joint Learning for Visible-Infrared Recognition". ICCV 2021 (CAJ).',
    "dai_ce2l": 'Dai, Xie, Ma, Liu, Xiong (Wuhan University of Technology). "RGB-Infrared Person Re-identification via Image Modality Conversion" (CE²L).',
}

# Provenance of a published row's numbers: value of PublishedResult.checked -> meaning.
CHECKED: dict[str, str] = {
    "ce2l_table": "taken cell for cell from the CE²L paper's comparison table (shared/data/published/ce2l_comparison_table.csv)",
    "paper_table": "taken from a results table of the paper named by the row's source",
    "code_readme": "taken from the results table of the README of the method's official code",
    "recalled": "recalled, not read from a paper; to be checked against the cited paper before publication",
}


@dataclass(frozen=True)
class PublishedResult:
    """One published result row on one dataset and protocol (values in percent; None = not filled in)."""

    method: str
    dataset_format: str  # "regdb" or "sysu_mm01"
    protocol: str  # e.g. "regdb visible->thermal", "sysu_mm01 all-search single-shot"
    rank1: float | None
    rank10: float | None
    rank20: float | None
    mAP: float | None
    source: str  # key of SOURCES
    checked: str  # key of CHECKED
    mINP: float | None = None  # mean inverse negative penalty (Ye et al., TPAMI 2021), where published


_R = "regdb"
_S = "sysu_mm01"
_RP = PAPER_PROTOCOLS[_R]
_SP = PAPER_PROTOCOLS[_S]
_CE2L = "ce2l_table"

# The CE²L comparison table, in its row order; the CSV's method names are noted where they differ.
_CE2L_TABLE: tuple[PublishedResult, ...] = (
    PublishedResult("LOMO", _R, _RP, 0.85, 2.47, 4.10, 2.28, "ye2018hcml", _CE2L),
    PublishedResult("LOMO", _S, _SP, 1.75, 14.14, 26.63, 3.48, "wu2017", _CE2L),
    PublishedResult("MLBP", _R, _RP, 2.02, 7.33, 10.90, 6.77, "ye2018hcml", _CE2L),
    PublishedResult("MLBP", _S, _SP, 2.12, 16.23, 28.32, 3.86, "ye2018hcml", _CE2L),
    PublishedResult("HOG", _R, _RP, 13.49, 33.22, 43.66, 10.31, "ye2018hcml", _CE2L),
    PublishedResult("HOG", _S, _SP, 2.76, 18.25, 31.91, 4.24, "wu2017", _CE2L),
    PublishedResult("GSM", _R, _RP, 17.28, 34.47, 45.26, 15.06, "ye2018hcml", _CE2L),
    PublishedResult("GSM", _S, _SP, 5.29, 33.71, 52.95, 8.00, "ye2018hcml", _CE2L),
    PublishedResult("One-stream", _R, _RP, 13.11, 32.98, 42.51, 14.02, "ye2018hcml", _CE2L),
    PublishedResult("One-stream", _S, _SP, 12.04, 49.68, 66.74, 13.67, "wu2017", _CE2L),
    PublishedResult("Two-stream", _R, _RP, 12.43, 30.36, 40.96, 13.42, "ye2018hcml", _CE2L),
    PublishedResult("Two-stream", _S, _SP, 11.65, 47.99, 65.50, 12.85, "wu2017", _CE2L),
    PublishedResult("Zero-Padding", _R, _RP, 17.75, 34.21, 44.35, 18.90, "ye2018hcml", _CE2L),
    PublishedResult("Zero-Padding", _S, _SP, 14.80, 54.12, 71.33, 15.95, "wu2017", _CE2L),
    PublishedResult("TONE", _R, _RP, 16.87, 34.03, 44.10, 14.92, "ye2018hcml", _CE2L),
    PublishedResult("TONE", _S, _SP, 12.52, 50.72, 68.60, 14.42, "ye2018hcml", _CE2L),
    PublishedResult("HCML", _R, _RP, 24.44, 47.53, 56.78, 20.80, "ye2018hcml", _CE2L),
    PublishedResult("HCML", _S, _SP, 14.32, 53.16, 69.17, 16.16, "ye2018hcml", _CE2L),
    PublishedResult("D²RL", _R, _RP, 43.4, 66.1, 76.3, 44.1, "wang2019d2rl", _CE2L),  # CSV: "D^2RL"
    PublishedResult("D²RL", _S, _SP, 28.9, 70.6, 82.4, 29.2, "wang2019d2rl", _CE2L),
    # CSV: "BaseLine" (ref [4]), i.e. BDTR.
    PublishedResult("BDTR (CE²L's BaseLine)", _R, _RP, 33.47, 58.42, 67.52, 31.83, "ye2018bdtr", _CE2L),
    PublishedResult("BDTR (CE²L's BaseLine)", _S, _SP, 17.01, 55.43, 71.96, 19.66, "ye2018bdtr", _CE2L),
    PublishedResult("CE²L", _R, _RP, 47.50, 72.17, 79.87, 44.21, "dai_ce2l", _CE2L),  # CSV: "CE^2L"
    PublishedResult("CE²L", _S, _SP, 29.52, 69.83, 82.49, 28.43, "dai_ce2l", _CE2L),
)

# AlignGAN, not in the CE²L table: the four SYSU-MM01 modes of its paper's Table 2. Its RegDB
# visible->thermal figures (rank-1 and mAP only) are not confirmed against the paper, so there
# is no RegDB row.
_ALIGNGAN: tuple[PublishedResult, ...] = tuple(
    PublishedResult("AlignGAN", _S, f"sysu_mm01 {mode}", r1, r10, r20, m_ap, "wang2019aligngan", "paper_table")
    for mode, (r1, r10, r20, m_ap) in {
        "all-search single-shot": (42.4, 85.0, 93.7, 40.7),
        "all-search multi-shot": (51.5, 89.4, 95.7, 33.9),
        "indoor-search single-shot": (45.9, 87.6, 94.4, 54.3),
        "indoor-search multi-shot": (57.1, 92.7, 97.4, 45.3),
    }.items()
)

# AGW and CAJ: rank-1, mAP and mINP of their code's READMEs (no rank-10/20 there); SYSU-MM01 is
# all-search single-shot (the code's default), RegDB visible->thermal.
_AGW_CAJ: tuple[PublishedResult, ...] = (
    PublishedResult("AGW", _S, _SP, 47.50, None, None, 47.65, "ye2021agw", "code_readme", mINP=35.30),
    PublishedResult("AGW", _S, "sysu_mm01 indoor-search single-shot", 54.17, None, None, 62.97, "ye2021agw",
                    "recalled", mINP=59.23),
    PublishedResult("AGW", _R, _RP, 70.05, None, None, 66.37, "ye2021agw", "code_readme", mINP=50.19),
    PublishedResult("CAJ", _S, _SP, 69.88, None, None, 66.89, "ye2021caj", "code_readme", mINP=53.61),
    PublishedResult("CAJ", _R, _RP, 85.03, None, None, 79.14, "ye2021caj", "code_readme", mINP=65.33),
)

PUBLISHED_RESULTS: tuple[PublishedResult, ...] = _CE2L_TABLE + _ALIGNGAN + _AGW_CAJ
