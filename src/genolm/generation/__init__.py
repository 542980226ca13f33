"""Lab 4, generation: sample DNA from a causal LM and measure how real it looks.

k-mer JSD, GC and novelty against i.i.d. and Markov baselines.
"""
