"""Training of rgbir-reid."""
