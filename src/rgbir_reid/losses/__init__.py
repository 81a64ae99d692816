"""Losses of rgbir-reid."""
