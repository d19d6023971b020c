"""The sample shop under examples/ runs under real uvicorn and every route answers right.

The shop's package is called ``server``, like the explorer's own: it only ever runs in a
child process (never imported here), started the way its README says.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from explorer.tools.bench_kit import base_url, free_port

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop"
#: the mistakes the shop carries on purpose, one marked line each
INJECTED_KINDS = ("hidden-sleep", "cpu-hot-spot", "sync-http", "leaked-task", "mid-stream")
_MARK = re.compile(r"#\s*injected:\s*([a-z-]+)\s*$")


def injected_lines(app_dir: Path = SHOP) -> dict[str, list[tuple[str, int]]]:
    """Every ``# injected: <kind>`` line of a sample app: kind -> [(path from app_dir, line)]."""
    found: dict[str, list[tuple[str, int]]] = {}
    for path in sorted(app_dir.rglob("*.py")):
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            mark = _MARK.search(text)
            if mark:
                found.setdefault(mark[1], []).append((path.relative_to(app_dir).as_posix(), number))
    return found


def injected(kind: str, app_dir: Path = SHOP) -> tuple[str, int]:
    """The one line of ``app_dir`` that carries the ``kind`` mistake (``server/x.py``, line)."""
    (where,) = injected_lines(app_dir)[kind]
    return where


def test_every_injected_mistake_is_marked_on_exactly_one_line() -> None:
    found = injected_lines()
    assert sorted(found) == sorted(INJECTED_KINDS)
    assert all(len(lines) == 1 for lines in found.values()), found
    assert all(path.startswith("server/") for lines in found.values() for path, _ in lines)


class Shop:
    """A shop child process and a client for it."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, client: httpx.Client) -> None:
        self.process = process
        self.log = log
        self.client = client

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_shop(
    module: str, log: Path, timeout: float = 30.0
) -> tuple[subprocess.Popen[bytes], int]:
    """``uvicorn <module> --app-dir examples/shop`` on a free port, answering /health."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", module, "--app-dir", str(SHOP)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=SHOP, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the shop exited ({process.returncode}): {log.read_text()}")
        try:
            if httpx.get(f"{base_url(port)}/health", timeout=1.0).status_code == 200:
                return process, port
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the shop never answered /health: {log.read_text()}")


def stop_shop(process: subprocess.Popen[bytes]) -> int:
    """Ctrl-C, as a user would; the exit code (killed after 10 s, then failing)."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -9


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    log = tmp_path_factory.mktemp("shop") / "uvicorn.log"
    process, port = start_shop("server.main:app", log)
    with httpx.Client(base_url=base_url(port), timeout=10.0) as client:
        yield Shop(process, log, client)
    code = stop_shop(process)
    # a clean stop runs the lifespan's shutdown (the upstream thread) and exits 0
    assert code == 0, Path(log).read_text()
    assert "Traceback" not in log.read_text(), log.read_text()


def test_health_and_catalogue(shop: Shop) -> None:
    assert shop.client.get("/health").json() == {"status": "ok"}
    products = shop.client.get("/products").json()
    assert [p["id"] for p in products] == [1, 2, 3, 4]
    assert all(p["name"] and p["price_cents"] > 0 for p in products)


def test_a_product_page_has_its_stock_and_an_unknown_one_is_a_404(shop: Shop) -> None:
    page = shop.client.get("/products/3").json()
    assert page["product"]["name"] == "Coffee grinder"
    assert page["in_stock"] == 4
    missing = shop.client.get("/products/99")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No product 99."


def test_a_quote_adds_up_and_is_the_same_every_time(shop: Shop) -> None:
    first = shop.client.get("/quote", params={"items": 7}).json()
    assert first["items"] == 7
    assert first["subtotal_cents"] == 7 * 450
    assert 0 <= first["discount_cents"] <= first["subtotal_cents"] // 10
    assert first["total_cents"] == first["subtotal_cents"] - first["discount_cents"]
    assert shop.client.get("/quote", params={"items": 7}).json() == first
    assert shop.client.get("/quote", params={"items": 0}).status_code == 422


def test_rates_come_from_the_lifespans_upstream(shop: Shop) -> None:
    rates = shop.client.get("/rates").json()
    assert rates["base"] == "USD"
    assert {"EUR", "GBP", "JPY"} <= rates.keys()
    assert all(isinstance(rates[c], float) for c in ("EUR", "GBP", "JPY"))


def test_an_order_is_accepted_at_once_while_its_confirmation_waits(shop: Shop) -> None:
    order = {"product_id": 2, "quantity": 3, "email": "ada@example.org"}
    started = time.monotonic()
    response = shop.client.post("/orders", json=order)
    elapsed = time.monotonic() - started
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "accepted"
    assert (body["product_id"], body["quantity"]) == (2, 3)
    # the confirmation task waits 30 s: the answer must not have waited for it
    assert elapsed < 10.0
    second = shop.client.post("/orders", json=order).json()
    assert second["order_id"] == body["order_id"] + 1
    assert shop.client.post("/orders", json={**order, "email": "nope"}).status_code == 422
    assert shop.client.post("/orders", json={**order, "product_id": 99}).status_code == 404


def test_the_export_streams_every_chunk(shop: Shop) -> None:
    chunks: list[str] = []
    with shop.client.stream("GET", "/export") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        chunks.extend(response.iter_text())
    lines = "".join(chunks).splitlines()
    assert lines[0] == "order_id,product_id,quantity"
    # nine chunks of five rows after the header, in order
    assert len(lines) == 1 + 9 * 5
    ids = [int(line.split(",")[0]) for line in lines[1:]]
    assert ids == list(range(1005, 1050))


#: the request that sets off each mistake, and the route the probe should name for it
TRIGGERS = {
    "hidden-sleep": ("GET", "/products/1", "GET /products/{product_id}"),
    "cpu-hot-spot": ("GET", "/quote?items=3", "GET /quote"),
    "sync-http": ("GET", "/rates", "GET /rates"),
    "mid-stream": ("GET", "/export", "GET /export"),
}


@pytest.fixture(scope="module")
def probed_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    log = tmp_path_factory.mktemp("probed") / "uvicorn.log"
    process, port = start_shop("server.probed:app", log)
    with httpx.Client(base_url=base_url(port), timeout=10.0) as client:
        yield Shop(process, log, client)
    assert stop_shop(process) == 0, log.read_text()


def test_the_probe_blames_each_marked_line_on_its_route(probed_shop: Shop) -> None:
    """``server/probed.py`` (``install(app)``) under uvicorn: every stall the shop is built
    to have is blamed on its ``# injected`` line, with its route."""
    client = probed_shop.client
    assert client.get("/_fastasync").json()["protocol"] == 1
    for method, path, _ in TRIGGERS.values():
        assert client.request(method, path).status_code == 200
    wanted = {
        kind: (f"{injected(kind)[0]}:{injected(kind)[1]} in ", r)
        for kind, (*_, r) in TRIGGERS.items()
    }
    found: dict[str, str] = {}
    deadline = time.monotonic() + 10.0
    while len(found) < len(wanted) and time.monotonic() < deadline:
        for stall in client.get("/_fastasync/monitor").json()["stalls"]:
            for kind, (where, route) in wanted.items():
                if (stall["location"] or "").startswith(where) and stall["route"] == route:
                    found[kind] = stall["location"]
        time.sleep(0.1)
    stalls = client.get("/_fastasync/monitor").json()["stalls"]
    seen = [(s["location"], s["route"], s["duration_ms"]) for s in stalls]
    assert sorted(found) == sorted(wanted), "\n".join(map(str, seen))


def test_the_task_inspector_finds_the_leaked_confirmation(probed_shop: Shop) -> None:
    order = {"product_id": 1, "quantity": 1, "email": "ada@example.org"}
    assert probed_shop.client.post("/orders", json=order).status_code == 201
    tasks = probed_shop.client.get("/_fastasync/tasks").json()["tasks"]
    path, line = injected("leaked-task")
    leaked = [t for t in tasks if t["coro"] == "send_confirmation"]
    assert leaked, tasks
    assert all(t["state"] == "pending" for t in leaked)
    assert f"{path}:{line}" in {t["created_at"] for t in leaked}
    assert {t["route"] for t in leaked} == {"POST /orders"}
