"""Evaluation of rgbir-reid."""
