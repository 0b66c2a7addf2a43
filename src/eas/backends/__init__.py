"""Backends turn encoded records into entropies and log-probabilities; see ``base``."""
