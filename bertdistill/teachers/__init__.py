"""Teachers and their stored outputs (label stores)."""
