"""Console entrypoints: thin wrappers over library functions."""
