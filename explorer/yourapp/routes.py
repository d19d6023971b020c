"""The app's routes, read from its OpenAPI document, as the load form's starting points.

Each operation becomes a :class:`RouteInfo`: its method and path, the path parameters to
fill, the required query parameters (with a value of their type), and an example JSON body
when it takes one. Pure: the document was fetched by the probe client.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

#: the methods a load run may use (OpenAPI's ``head``, ``options``, ``trace`` aside)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PARAM = re.compile(r"\{([^}/]+)\}")
#: the probe's own routes are not the user's app
_PROBE_PREFIX = "/_fastasync"


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One operation of the app: what the load form is filled with when it is picked."""

    method: str
    path: str  # the template, ``/items/{item_id}``
    summary: str = ""
    path_params: tuple[tuple[str, str], ...] = ()  # (name, example value)
    query: str = ""  # ``q=abc&limit=1``: the required parameters
    body: str | None = None  # an example JSON body, when the route takes one

    @property
    def label(self) -> str:
        """``GET /items/{item_id}``: how the list and the figures name it."""
        return f"{self.method} {self.path}"

    def filled_path(self) -> str:
        """The path with each parameter replaced by an example of its type."""
        path = self.path
        for name, value in self.path_params:
            path = path.replace("{" + name + "}", value)
        return path


def unfilled_params(path: str) -> list[str]:
    """The ``{name}`` placeholders still in ``path``."""
    return _PARAM.findall(path)


def routes_of(document: dict[str, Any] | None) -> list[RouteInfo]:
    """Every operation of ``document`` in its own order (the probe's routes left out)."""
    if not document:
        return []
    routes = []
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict) or path.startswith(_PROBE_PREFIX):
            continue
        shared = item.get("parameters") or []
        for method, operation in item.items():
            if method.upper() not in METHODS or not isinstance(operation, dict):
                continue
            routes.append(_route(document, method.upper(), path, operation, shared))
    return routes


def _route(
    document: dict[str, Any],
    method: str,
    path: str,
    operation: dict[str, Any],
    shared: list[Any],
) -> RouteInfo:
    params = [_resolve(document, p) for p in [*shared, *(operation.get("parameters") or [])]]
    path_params = tuple(
        (str(p["name"]), _scalar_example(document, p.get("schema") or {}, str(p["name"])))
        for p in params
        if p.get("in") == "path"
    )
    query = "&".join(
        f"{p['name']}={_scalar_example(document, p.get('schema') or {}, str(p['name']))}"
        for p in params
        if p.get("in") == "query" and p.get("required")
    )
    return RouteInfo(
        method=method,
        path=path,
        summary=str(operation.get("summary") or ""),
        path_params=path_params,
        query=query,
        body=_body_example(document, operation.get("requestBody")),
    )


def _resolve(document: dict[str, Any], node: Any, depth: int = 0) -> dict[str, Any]:
    """``node`` with its ``$ref`` (``#/components/...``) followed, a few levels at most."""
    while isinstance(node, dict) and "$ref" in node and depth < 8:
        target: Any = document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node, depth = target, depth + 1
    return node if isinstance(node, dict) else {}


def _body_example(document: dict[str, Any], body: Any) -> str | None:
    body = _resolve(document, body)
    content = body.get("content") or {}
    media = content.get("application/json")
    if media is None:
        return None
    media = _resolve(document, media)
    if "example" in media:
        return json.dumps(media["example"])
    return json.dumps(example_of(document, media.get("schema") or {}))


def example_of(document: dict[str, Any], schema: Any, depth: int = 0) -> Any:
    """A value that fits ``schema``: its example or default, else the simplest of its type
    (objects with their required properties, or all of them when none is required)."""
    schema = _resolve(document, schema)
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if "examples" in schema and isinstance(schema["examples"], list) and schema["examples"]:
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or [] if _resolve(document, o).get("type") != "null"]
        if options:
            return example_of(document, options[0], depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        properties = schema.get("properties") or {}
        names = schema.get("required") or list(properties)
        return {n: example_of(document, properties.get(n, {}), depth + 1) for n in names}
    if kind == "array":
        return [example_of(document, schema.get("items") or {}, depth + 1)] if depth < 4 else []
    return {"integer": 1, "number": 1.0, "boolean": True}.get(str(kind), "abc")


def _scalar_example(document: dict[str, Any], schema: dict[str, Any], name: str) -> str:
    value = example_of(document, schema)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float | str) else name


def parse_free_form(text: str) -> tuple[str, str] | None:
    """``"POST /orders"`` → ("POST", "/orders"); None for anything else."""
    parts = text.split()
    if len(parts) != 2 or parts[0].upper() not in METHODS or not parts[1].startswith("/"):
        return None
    return parts[0].upper(), parts[1]
