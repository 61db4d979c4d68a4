"""Video -> landmarks (a tracker plugin) -> morphable-model parameters (the fitter)."""
