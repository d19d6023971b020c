"""fastasync_probe: the event-loop instrument of fastasync-explorer, for any asyncio app.

A stall watchdog, a lag sampler and a task book (standard library only, ``monitor``), and
a pure ASGI middleware that names the request a stall blocked and the requests that
waited for it. This is the only part of fastasync-explorer that runs inside other
people's processes, so it lives under a name of its own that cannot collide with theirs
(``server``, ``app``, ``main``...). One line puts it in an app::

    from fastasync_probe import install
    app = install(app)
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
#: the probe's HTTP protocol: an explorer reads only a probe of its own protocol
PROTOCOL = 1

if TYPE_CHECKING:
    from .asgi import PREFIX, ProbeMiddleware, install

__all__ = ["PREFIX", "PROTOCOL", "ProbeMiddleware", "__version__", "install"]


def __getattr__(name: str) -> Any:
    # Lazy: the pytest plugin (``fastasync_probe.pytest_plugin``) is loaded by every pytest
    # run in an environment that has the explorer, and must not pay for the middleware.
    if name in ("PREFIX", "ProbeMiddleware", "install"):
        from . import asgi

        return getattr(asgi, name)
    raise AttributeError(f"module 'fastasync_probe' has no attribute {name!r}")
