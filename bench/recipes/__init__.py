"""The training recipe of the shipped models: ``python -m bench.recipes.recipe STEP`` (README.md here)."""
