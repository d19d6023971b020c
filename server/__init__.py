"""The FastAPI side of fastasync-explorer: runs alone, never imports the UI."""

__version__ = "0.1.0"
