"""Lab 3, zero-shot variant effects.

Read ref/alt pairs, score them (embedding distances, likelihood ratios), report AUROCs.
"""
