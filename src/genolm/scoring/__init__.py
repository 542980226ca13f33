"""Lab 3, zero-shot variant effects: read ref/alt pairs, score them, report AUROCs.

Scores are embedding distances and likelihood ratios.
"""
