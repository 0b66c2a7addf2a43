"""Files and runs on disk: rows in and out, records from rows, the resumable run store."""
