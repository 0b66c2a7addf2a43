"""The uncertainty study: sample, grade, score, correlate, draw and report."""
