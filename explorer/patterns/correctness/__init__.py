"""Correctness pane: the guide's own snippets that are wrong, shown corrected (scaffold)."""
