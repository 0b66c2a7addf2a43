"""Records -> scored rows: the probe layout, score_records, the resumable score_file, the Ray engine."""
