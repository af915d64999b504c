"""Statistics on prediction tables: metrics, permutation nulls, single-case tests, gatekeeping and the verdict per person. Numbers only; no display."""
