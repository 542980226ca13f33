"""Shared by every lab: batches of DNA windows through a model.

Tokenize, pad, pool, forward; bits per base, strands, CPU batch parallelism.
"""
