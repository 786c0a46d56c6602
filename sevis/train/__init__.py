"""Training: the recipe, and the grids of runs (ablations, architecture families)."""
