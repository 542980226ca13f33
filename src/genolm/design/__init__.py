"""Sequence design: oracles, constraints, search algorithms and motif scans."""
