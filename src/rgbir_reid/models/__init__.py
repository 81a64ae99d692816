"""Models of rgbir-reid."""
