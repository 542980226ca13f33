"""Lab 5, design: oracles, constraints, search algorithms, motif scans and the design audit."""
