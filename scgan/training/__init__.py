"""Torch-free parts of the trainer (its typed configuration); the trainer itself is ``scgan.train``."""
