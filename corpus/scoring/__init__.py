"""Pure scoring for Synthgate (no Django): hashing, MinHash/LSH, lexical stats, detectors."""

SCORER_VERSION = "1"
