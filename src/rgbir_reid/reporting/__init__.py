"""Reporting of rgbir-reid."""
