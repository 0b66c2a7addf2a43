"""Estimators: exact (and stratified) EAS, an amortised head, ``auto`` calibration (``calibration``)."""
