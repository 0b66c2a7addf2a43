"""Records -> scored rows: estimators plugged into one run loop (``runs``), locally or on Ray."""
