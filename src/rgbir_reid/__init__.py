"""rgbir-reid: RGB-infrared cross-modality person re-identification (CE²L, AlignGAN, baselines)."""

__version__ = "0.1.0"
