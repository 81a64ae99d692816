"""Evaluation of rgbir-reid: rank metrics and the SYSU-MM01 / RegDB protocols.

``fidelity`` (image-conversion measures) is imported from its own module, not from here.
"""

from rgbir_reid.evaluation.metrics import ChanceMetrics, RankMetrics, chance_metrics, rank_metrics

__all__ = ["ChanceMetrics", "RankMetrics", "chance_metrics", "rank_metrics"]
