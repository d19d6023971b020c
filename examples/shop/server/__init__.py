"""A small shop API with a few classic event-loop mistakes in it, for the explorer to find.

Each mistake sits on its own line marked ``# injected: <kind>`` (see ../README.md).
"""
