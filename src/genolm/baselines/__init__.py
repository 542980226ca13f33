"""Baselines that every model result is reported beside (order-k Markov chains for DNA LMs)."""
