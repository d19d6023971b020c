"""Correctness: the guide's own snippets that are wrong, shown corrected (scaffold)."""
