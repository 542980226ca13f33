"""Benchmarks of classifiers: seed statistics and test-set bootstrap (:mod:`genolm.benchmark.stats`)."""
