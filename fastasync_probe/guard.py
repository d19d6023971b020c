"""Who may read the probe: loopback clients, and anyone else only with its token.

The probe serves stacks and source lines of the app it is in. Those never leave the
machine unless the app's owner gave the probe a token and the client presents it.
"""

from __future__ import annotations

import hmac
import ipaddress

from .asgi_io import Scope, header, query_of

REFUSAL = (
    "the fastasync probe answers loopback clients only; from elsewhere send its token "
    "(Authorization: Bearer <token>, set with install(app, token=...) or "
    "FASTASYNC_PROBE_TOKEN)"
)


def is_loopback(scope: Scope) -> bool:
    """True when the client's address is a loopback one (127.0.0.0/8, ::1, mapped)."""
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(str(client[0]))
    except ValueError:  # a name ("testclient") or a socket path: not known to be local
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def presented_token(scope: Scope) -> str | None:
    """The token the client sent: ``Authorization: Bearer`` or ``?token=`` (EventSource
    cannot set headers)."""
    authorization = header(scope, b"authorization")
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return query_of(scope).get("token")


def allowed(scope: Scope, token: str | None) -> bool:
    """May this request read the probe?"""
    if is_loopback(scope):
        return True
    if not token:
        return False
    offered = presented_token(scope)
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())
