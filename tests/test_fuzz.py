"""API fuzzing: schemathesis against the app's own OpenAPI, on a real server over loopback.

Every non-streaming operation gets generated valid and invalid input; every answer must be
a documented status (never a 5xx), arrive in time, and match its response schema.
"""

from __future__ import annotations

import asyncio
import copy
import math
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from explorer.tools.load import deliberate_5xx_of, slow_knobs_of
from server.app import create_app
from server.patterns import PATTERNS
from server.runner import ServerHandle
from server.settings import Settings

#: Streaming operations answer forever by design (SSE feeds): a request to one would hang
#: the fuzzer, so they are left out here and tested by their own disconnect tests.
STREAMING = {"/monitor/stream", "/tasks/stream", "/sse/feed", "/sse/ticker"}

#: Parameters that set how long or how hard a handler works, with the cheap value each
#: pattern declares for its own (``SLOW_KNOBS`` in ``explorer/patterns/<slug>/load.py``).
#: Their full ranges are valid (a 10 s blocking sleep is the lesson) and their bounds are
#: tested by each pattern's own tests. Here a generated value that is valid everywhere the
#: name is declared is lowered to its pattern's cap before the call, so hundreds of cases
#: finish in seconds. A value outside the declared range is never touched, so invalid
#: input stays invalid and must be refused.
PATTERN_CAPS: dict[str, dict[str, float]] = {slug: slow_knobs_of(slug) for slug in PATTERNS}

#: Every capped name, with its cheapest cap anywhere (an operation gets its own pattern's).
CAPS: dict[str, float] = {
    name: min(caps[name] for caps in PATTERN_CAPS.values() if name in caps)
    for name in {name for caps in PATTERN_CAPS.values() for name in caps}
}

#: Operations whose 5xx is the lesson, documented (``DELIBERATE_5XX`` of each pattern).
DELIBERATE_5XX: dict[str, int] = {
    path: status for slug in PATTERNS for path, status in deliberate_5xx_of(slug).items()
}


def caps_of(path: str) -> dict[str, float]:
    """The caps of the pattern that ``path`` belongs to (none outside the patterns)."""
    return PATTERN_CAPS.get(path.split("/")[1], {})


#: Starlette answers a method a path does not have with 405 and the Allow header of the
#: first route on that path only: GET /stream/files and POST /stream/files are two routes,
#: so OPTIONS gets "Allow: GET". A framework trait, not this app's; the 405 itself is kept.
ALLOW_HEADER_CHECK = schemathesis.checks.allow_header_conformance

REQUEST_TIMEOUT_S = 15.0
EXAMPLES = 30

#: cases run per operation, reported at the end of the session (see conftest.py)
FUZZ_STATS: Counter[str] = Counter()


Maxima = dict[str, float]


def _resolve(node: Any, document: dict[str, Any]) -> Any:
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return target
    return node


def _collect(node: Any, document: dict[str, Any], found: Maxima, seen: set[int]) -> None:
    node = _resolve(node, document)
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            prop = _resolve(prop, document)
            for key in ("maximum", "exclusiveMaximum"):
                if name in CAPS and isinstance(prop, dict) and key in prop:
                    found[name] = min(found.get(name, prop[key]), prop[key])
        for value in node.values():
            _collect(value, document, found, seen)
    elif isinstance(node, list):
        for value in node:
            _collect(value, document, found, seen)


def declared_maxima(document: dict[str, Any]) -> dict[tuple[str, str], Maxima]:
    """Per operation, the declared ``maximum`` of each capped parameter (query or body)."""
    maxima: dict[tuple[str, str], Maxima] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            found: Maxima = {}
            for parameter in operation.get("parameters", []):
                schema = _resolve(parameter.get("schema", {}), document)
                name = parameter["name"]
                for key in ("maximum", "exclusiveMaximum"):
                    if name in CAPS and key in schema:
                        found[name] = schema[key]
            _collect(operation.get("requestBody", {}), document, found, set())
            maxima[(method.upper(), path)] = found
    return maxima


def _as_number(value: Any) -> float | None:
    """The number a JSON value or a query-string value stands for, if any."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def lower_slow_values(data: Any, maxima: Maxima, caps: dict[str, float] | None = None) -> Any:
    """``data`` with every in-range value of a capped parameter lowered to its cap."""
    caps = CAPS if caps is None else caps
    if isinstance(data, dict):
        lowered = {}
        for name, value in data.items():
            cap, number = caps.get(name), _as_number(value)
            maximum = maxima.get(name, -math.inf)
            if cap is not None and number is not None and cap < number <= maximum:
                # keep the value's own form: a query string stays a string
                value = str(cap) if isinstance(value, str) else type(value)(cap)
            lowered[name] = lower_slow_values(value, maxima, caps)
        return lowered
    if isinstance(data, list):
        return [lower_slow_values(item, maxima, caps) for item in data]
    return data


def fuzz_schema() -> dict[str, Any]:
    """The app's OpenAPI without the streaming operations (which never end by design)."""
    document = copy.deepcopy(create_app(Settings()).openapi())
    document["paths"] = {p: v for p, v in document["paths"].items() if p not in STREAMING}
    return document


MAXIMA = declared_maxima(fuzz_schema())
schema = schemathesis.openapi.from_dict(fuzz_schema())


class ThreadedServer:
    """The app on its own loop in a thread, because schemathesis calls synchronously."""

    def __init__(self, data_dir: Path) -> None:
        self.handle = ServerHandle(Settings(port=0, data_dir=data_dir))
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.handle.start()
        except BaseException as error:
            self._error = error
            self._ready.set()
            raise
        # the database seeds in the background and answers 503 until then: fuzz it ready
        async with httpx.AsyncClient(base_url=self.handle.url) as http:
            for _ in range(300):
                if (await http.get("/db/status")).json()["state"] == "ready":
                    break
                await asyncio.sleep(0.05)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.handle.stop()

    def __enter__(self) -> str:
        self._thread.start()
        assert self._ready.wait(20), "the server did not start within 20 s"
        if self._error is not None:
            raise self._error
        return self.handle.url

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "the server did not stop within 15 s"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with ThreadedServer(tmp_path_factory.mktemp("fuzz-data")) as url:
        yield url


def test_every_capped_parameter_is_declared_with_a_maximum() -> None:
    declared = {name for found in MAXIMA.values() for name in found}
    assert declared == set(CAPS)
    assert MAXIMA[("GET", "/basics/cpu")] == {"n": 20_000_000}
    assert MAXIMA[("POST", "/tasks/background")] == {"duration_s": 30}
    slow = {"delay": 10.0, "jobs": [{"duration_s": 30.0}, {"duration_s": 31.0}], "ok": True}
    assert lower_slow_values({"delay": "9.5", "n": "x"}, {"delay": 10, "n": 5}) == {
        "delay": "0.02",
        "n": "x",
    }
    assert lower_slow_values(slow, {"delay": 10, "duration_s": 30}) == {
        "delay": 0.02,
        "jobs": [{"duration_s": 0.05}, {"duration_s": 31.0}],
        "ok": True,
    }


def test_each_pattern_caps_and_excuses_only_its_own_operations() -> None:
    paths = fuzz_schema()["paths"]
    for slug in PATTERNS:
        own = {
            name
            for (_, path), found in MAXIMA.items()
            if path.startswith(f"/{slug}/")
            for name in found
        }
        caps = set(PATTERN_CAPS[slug])
        assert caps <= own, f"{slug} caps {caps - own}, which none of its routes declares"
        for path, status in deliberate_5xx_of(slug).items():
            assert path.startswith(f"/{slug}/"), f"{slug} excuses {path}, not one of its own"
            assert path in paths
            assert 500 <= status < 600


def test_streaming_operations_are_the_only_ones_left_out() -> None:
    document = create_app(Settings()).openapi()
    streaming = {
        path
        for path, operations in document["paths"].items()
        for operation in operations.values()
        if "text/event-stream" in operation.get("responses", {}).get("200", {}).get("content", {})
    }
    assert streaming == STREAMING
    assert len(fuzz_schema()["paths"]) == len(document["paths"]) - len(STREAMING)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_answers_every_input_with_a_documented_status(
    case: schemathesis.Case[Any], base_url: str
) -> None:
    FUZZ_STATS[case.operation.label] += 1
    maxima = MAXIMA.get((case.method.upper(), case.path), {})
    caps = caps_of(case.path)
    if isinstance(case.query, dict):
        case.query = lower_slow_values(case.query, maxima, caps)
    # an absent knob takes its default, which may be slow (a deadlock demo's 20 s bound)
    absent = {p.name: caps[p.name] for p in case.operation.query if p.name in caps}
    if absent and (case.query is None or isinstance(case.query, dict)):
        case.query = {**absent, **(case.query or {})}
    if isinstance(case.body, dict | list):
        case.body = lower_slow_values(case.body, maxima, caps)
    excluded = [ALLOW_HEADER_CHECK]
    if case.media_type == "multipart/form-data":
        # Schemathesis cannot make a file part invalid: its "negative" multipart bodies are
        # still a valid file, which the server rightly accepts. Every other check holds.
        excluded.append(schemathesis.checks.negative_data_rejection)
    deliberate = DELIBERATE_5XX.get(case.path)
    if deliberate is not None:
        # the status is still checked against the documented ones, and must say why
        response = case.call_and_validate(
            base_url=base_url,
            timeout=REQUEST_TIMEOUT_S,
            excluded_checks=[*excluded, schemathesis.checks.not_a_server_error],
        )
        if response.status_code == deliberate:
            assert response.json()["detail"]
            return
    else:
        response = case.call_and_validate(
            base_url=base_url, timeout=REQUEST_TIMEOUT_S, excluded_checks=excluded
        )
    assert response.status_code < 500
