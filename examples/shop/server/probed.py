"""The shop with the probe inside: ``uvicorn server.probed:app --app-dir examples/shop``,
then ``fastasync-explorer attach http://127.0.0.1:8000``."""

from fastasync_probe import install

from .main import app as _app

app = install(_app)
