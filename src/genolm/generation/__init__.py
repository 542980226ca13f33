"""Lab 4, generation: sample DNA from a causal LM.

How real it looks is measured (k-mer JSD, GC, novelty) against i.i.d./Markov baselines.
"""
