"""Inference as plain functions over an ``nn.Module`` and tensors, returning DataFrames."""
