"""A NumPy CNN for inference: layers, VGG-16 to fc7, EfficientNet-Lite0."""
