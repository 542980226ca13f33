"""Model code (plain PyTorch / transformers, free of Lightning and Hydra)."""
