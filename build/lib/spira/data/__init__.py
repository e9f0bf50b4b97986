"""Ingestion: from a cohort's tables and audio files to the prepared data."""

# The split names of every data contract (manifest, features, evaluation).
SPLITS = ("train", "val", "test")
