"""PyTorch definitions of the published colorizers compared in the SCGAN paper, with loaders for their released weights.

Each module defines the network in its authors' parameter layout (or, where no PyTorch weights were released, in a
layout this project defines and documents), a strict state-dict loader, and a wrapper that follows the ONNX colorizer
contract (gray in [0, 1] -> sRGB in [0, 1], the model's normalisation inside the graph).
"""
