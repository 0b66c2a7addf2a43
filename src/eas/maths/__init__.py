"""Pure maths: entropies, per-record metrics and their registry, statistics, trajectories (no torch, no I/O)."""
