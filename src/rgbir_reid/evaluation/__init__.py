"""Evaluation of rgbir-reid: rank metrics and the SYSU-MM01 / RegDB protocols.

``fidelity`` (image-conversion measures) is imported from its own module, not from here.
"""

from rgbir_reid.evaluation.metrics import RankMetrics, rank_metrics

__all__ = ["RankMetrics", "rank_metrics"]
