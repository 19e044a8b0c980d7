"""scgan-bench: SCGAN (Zhao et al., IEEE TCSVT 2020) model, trainer and colorize pipeline."""

__version__ = "0.1.0"
