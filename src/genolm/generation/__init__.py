"""Lab 4, generation: sample DNA from a causal LM and measure how real it looks (k-mer JSD, GC, novelty) against i.i.d./Markov baselines."""
