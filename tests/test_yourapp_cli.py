"""run, attach and check on real child processes hosting tiny apps written to tmp_path.

The sample package is named ``server``, like the explorer's own: it only ever runs in a
child (``fastasync_probe.host`` or uvicorn), never in this process.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from explorer.yourapp.hosted import HostedApp, HostError, probe_info
from explorer.yourapp.route_spec import SpecError, parse_ms, parse_route
from tests.ptyrun import PtyProcess

ROOT = Path(__file__).resolve().parent.parent

MAIN = """
import asyncio
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fastasync_probe import install

app = FastAPI()


@app.get("/marker")
async def marker():
    return {"marker": "the user's own server package"}


@app.get("/block")
async def block():
    time.sleep(0.1)  # BLOCKING LINE
    return {}


@app.get("/await")
async def awaiting():
    await asyncio.sleep(0.01)
    return {}


@app.get("/forever")
async def forever():
    await asyncio.sleep(3600)
    return {}


probed = install(FastAPI())
probed.get("/marker")(marker)

notapp = 42


@asynccontextmanager
async def failing(app):
    raise RuntimeError("database is down")  # LIFESPAN LINE
    yield


broken = FastAPI(lifespan=failing)


@asynccontextmanager
async def stuck(app):
    yield
    await asyncio.sleep(3600)


hangs_at_shutdown = FastAPI(lifespan=stuck)
"""

#: an app that answers /_fastasync like a probe of another version, or refuses
IMPOSTOR = """
import json


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    authorized = any(name == b"authorization" for name, _ in scope["headers"])
    status, body = (200, {"probe": "fastasync_probe", "protocol": 999}) if authorized else (
        403, {"detail": "loopback or token only"})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
"""


def line_of(source: str, marker: str) -> int:
    return next(n for n, text in enumerate(source.splitlines(), 1) if marker in text)


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("userapp")
    (folder / "server").mkdir()
    (folder / "server" / "__init__.py").write_text("")
    (folder / "server" / "main.py").write_text(MAIN)
    (folder / "boom.py").write_text('x = 1\nraise ValueError("boom at import")\n')
    (folder / "impostor.py").write_text(IMPOSTOR)
    return folder


def explorer(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """The explorer's command line in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "explorer.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def gone(pid: int) -> bool:
    """No such process, or only its zombie (a reaper-less container keeps those)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in {"Z", "X"}


def wait_until_gone(pid: int, within: float = 15) -> bool:
    deadline = time.monotonic() + within
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def hosts_of(parent: int) -> list[int]:
    """The ``fastasync_probe.host`` children of ``parent``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"fastasync_probe.host" in command:
            found.append(int(stat.parent.name))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_the_users_server_package_wins_and_stop_leaves_nothing(
    app_dir: Path, tmp_path: Path
) -> None:
    hosted = HostedApp("server.main:app", app_dir=app_dir, log_path=tmp_path / "app.log")
    try:
        target = hosted.wait_ready(60)
        assert httpx.get(f"{target.url}/marker").json() == {
            "marker": "the user's own server package"
        }
        info = probe_info(target.url)
        assert info["pid"] == target.pid == hosted.pid
        assert info["loop"] == "uvloop.Loop"  # uvicorn's "auto" loop, uvloop installed
        assert target.log_path is not None
    finally:
        status = hosted.stop()
    assert status == 0
    assert target.pid is not None
    assert wait_until_gone(target.pid)
    log = target.log_path.read_text()
    assert "Application shutdown complete" in log  # the graceful path, lifespan included


def test_a_temporary_log_goes_after_a_clean_stop_and_after_a_sentence(
    app_dir: Path,
) -> None:
    with HostedApp("server.main:app", app_dir=app_dir) as hosted:
        served = hosted.wait_ready(60).log_path
    assert served is not None
    assert not served.exists()
    broken = HostedApp("server.main:nothing_here", app_dir=app_dir)
    with pytest.raises(HostError, match="nothing_here"):
        broken.wait_ready(60)
    assert broken.log_path is not None
    assert not broken.log_path.exists()  # the sentence says it all


def test_uvicorn_options_after_the_double_dash_reach_uvicorn(app_dir: Path) -> None:
    with HostedApp(
        "server.main:app", app_dir=app_dir, uvicorn_args=["--loop", "asyncio", "--http", "h11"]
    ) as hosted:
        target = hosted.wait_ready(60)
        assert probe_info(target.url)["loop"].startswith("asyncio.")


def test_an_app_that_will_not_shut_down_is_killed(app_dir: Path) -> None:
    hosted = HostedApp("server.main:hangs_at_shutdown", app_dir=app_dir)
    target = hosted.wait_ready(60)
    assert hosted.stop(grace_s=1.0) == -signal.SIGKILL
    assert target.pid is not None
    assert wait_until_gone(target.pid)


def test_a_request_in_flight_does_not_hold_the_stop(app_dir: Path) -> None:
    """uvicorn waits for every request in flight at shutdown: the host bounds that at 3 s,
    so the graceful path (lifespan shutdown) still runs before the 5 s kill."""
    hosted = HostedApp("server.main:app", app_dir=app_dir)
    target = hosted.wait_ready(60)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(httpx.get, f"{target.url}/forever", timeout=30)
        deadline = time.monotonic() + 30
        while httpx.get(f"{target.url}/_fastasync/monitor").json()["in_flight"] < 1:
            assert time.monotonic() < deadline, "the request never arrived"
            time.sleep(0.05)
        began = time.monotonic()
        assert hosted.stop() == 0  # not -SIGKILL
        assert time.monotonic() - began < 4.5
        with contextlib.suppress(httpx.HTTPError):  # its answer, if any, is uvicorn's
            waiting.result(timeout=10)


def test_the_app_stops_when_the_explorer_dies(app_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from explorer.yourapp.hosted import HostedApp
        target = HostedApp("server.main:app", app_dir=Path({str(app_dir)!r})).wait_ready(60)
        print(target.pid, flush=True)
        os._exit(0)  # no stop(): only the stdin lifeline is left
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=90, cwd=ROOT
    )
    pid = int(result.stdout.strip())
    assert wait_until_gone(pid), f"the app (pid {pid}) outlived the explorer"


def test_run_opens_the_view_and_quitting_it_stops_the_app(app_dir: Path) -> None:
    argv = [sys.executable, "-m", "explorer.cli", "run", "server.main:app"]
    tui = PtyProcess([*argv, "--app-dir", str(app_dir)], columns=120, rows=40)
    try:
        # the view lists the app's routes, read from its OpenAPI through the probe's host
        assert tui.wait_for_output(b"/marker", 60), tui.text()[-2000:]
        hosts = hosts_of(tui.process.pid)
        assert len(hosts) == 1
        tui.send(b"q")
        assert tui.wait(20) == 0
        assert wait_until_gone(hosts[0]), "the app outlived the view"
    finally:
        tui.close()


@pytest.mark.parametrize(
    ("target", "extra", "sentence"),
    [
        ("nothere:app", [], "no module named 'nothere' in "),
        ("boom:app", [], "importing boom raised ValueError: boom at import (at "),
        ("server.main:nope", [], "has no attribute 'nope'"),
        ("server.main:notapp", [], "server.main:notapp is 42 (of type int), not an ASGI app"),
        ("server.main", [], "is not MODULE:ATTRIBUTE"),
        ("server.main:app", ["--", "--loop", "bogus"], "uvicorn option --loop is one of"),
        ("server.main:app", ["--", "--reload"], "uvicorn option --reload is not for here"),
        ("server.main:app", ["--", "--frobnicate", "1"], "uvicorn has no option --frobnicate"),
    ],
)
def test_run_of_a_broken_app_is_one_sentence_and_no_view(
    app_dir: Path, target: str, extra: list[str], sentence: str
) -> None:
    result = explorer("run", target, "--app-dir", str(app_dir), *extra, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("fastasync-explorer: ")
    assert sentence in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # the view never drew anything


def test_import_error_names_the_file_and_line(app_dir: Path) -> None:
    result = explorer("run", "boom:app", "--app-dir", str(app_dir), cwd=ROOT)
    assert f"{app_dir / 'boom.py'}:2)" in result.stderr


def test_a_lifespan_that_raises_is_named_with_its_line(app_dir: Path) -> None:
    result = explorer("run", "server.main:broken", "--app-dir", str(app_dir), cwd=ROOT)
    assert result.returncode == 2
    line = line_of(MAIN, "LIFESPAN LINE")
    assert result.stderr.strip() == (
        "fastasync-explorer: the app's lifespan startup raised RuntimeError: database is down "
        f"(at {app_dir / 'server' / 'main.py'}:{line})"
    )


def test_a_port_in_use_is_a_sentence(app_dir: Path, listening: int) -> None:
    result = explorer(
        "run", "server.main:app", "--app-dir", str(app_dir), "--port", str(listening), cwd=ROOT
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"fastasync-explorer: port {listening} on 127.0.0.1 is already in use"
    )


def test_check_fails_on_a_blocking_route_and_names_its_line(app_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = explorer(
        "check", "server.main:app", "--app-dir", str(app_dir),
        "--routes", "GET /block", "/marker", "--budget", "50ms", "--duration", "1",
        "--json", str(report), cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    culprit = f"server/main.py:{line_of(MAIN, 'BLOCKING LINE')} in block"
    assert culprit in result.stdout
    assert any(line.startswith("FAIL: ") for line in result.stdout.splitlines())
    assert all(len(line) <= 100 for line in result.stdout.splitlines())
    data = json.loads(report.read_text())
    assert data["passed"] is False
    assert data["culprits"][0]["location"] == culprit
    assert data["culprits"][0]["route"] == "GET /block"
    assert data["culprits"][0]["max_ms"] >= 100
    routes = {r["route"]: r for r in data["routes"]}
    assert routes["GET /block"]["requests"] > 0
    assert routes["GET /marker"]["statuses"] == {"200": routes["GET /marker"]["requests"]}


def test_check_passes_an_awaiting_route(app_dir: Path) -> None:
    # the budget leaves room for a noisy machine: the route itself never blocks
    result = explorer(
        "check", "server.main:app", "--app-dir", str(app_dir),
        "--routes", "GET /await", "--budget", "250ms", "--duration", "1", cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(line.startswith("PASS: ") for line in result.stdout.splitlines())
    assert "GET /await" in result.stdout


@pytest.mark.parametrize(
    ("routes", "budget", "sentence"),
    [
        (["FETCH /x"], "50ms", "does not start with a method"),
        (["POST /orders {nope"], "50ms", "is not JSON"),
        (["GET"], "50ms", "has no path"),
        (["GET /a", "GET /a"], "50ms", "named twice"),
        (["GET /a"], "fast", "--budget is a time like 50ms"),
    ],
)
def test_check_refuses_bad_specs_before_starting_anything(
    app_dir: Path, routes: list[str], budget: str, sentence: str
) -> None:
    result = explorer(
        "check", "server.main:app", "--app-dir", str(app_dir), "--routes", *routes,
        "--budget", budget, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2
    assert sentence in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def uvicorn_child(app_dir: Path) -> Iterator[Callable[[str], str]]:
    """Start ``python -m uvicorn MODULE:APP`` (the app's own way); give a launcher."""
    children: list[subprocess.Popen[str]] = []

    def start(spec: str, *options: str, host: str = "127.0.0.1", token: str = "") -> str:
        port = free_port()
        env = {**os.environ, "FASTASYNC_PROBE_TOKEN": token} if token else None
        child = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", spec, "--app-dir", str(app_dir),
             "--host", host, "--port", str(port), "--log-level", "warning", *options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=env,
        )  # fmt: skip
        children.append(child)
        url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=1)
                return url
            except httpx.TransportError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise
                time.sleep(0.05)

    yield start
    for child in children:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def test_attach_reads_the_probe_of_an_app_started_on_its_own(
    uvicorn_child: Callable[[str], str],
) -> None:
    url = uvicorn_child("server.main:probed")
    info = probe_info(url)
    assert info["probe"] == "fastasync_probe"
    assert info["pid"] != os.getpid()
    assert httpx.get(f"{url}/marker").json()["marker"] == "the user's own server package"


def test_attach_to_a_dead_port_is_a_sentence() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = explorer("attach", url, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip() == f"fastasync-explorer: nothing answers at {url}"


def test_attach_to_an_app_without_the_probe_says_how_to_add_it(
    uvicorn_child: Callable[[str], str],
) -> None:
    url = uvicorn_child("server.main:app")
    result = explorer("attach", url, cwd=ROOT)
    assert result.returncode == 2
    assert "answers but has no fastasync probe: add `install(app)`" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_refusing_probe_and_another_version_are_sentences(
    uvicorn_child: Callable[[str], str],
) -> None:
    url = uvicorn_child("impostor:app")
    with pytest.raises(HostError, match=r"refused this explorer.*--token"):
        probe_info(url)
    with pytest.raises(HostError, match="speaks protocol 999, this explorer 1: install the"):
        probe_info(url, token="secret")


@pytest.mark.parametrize(
    ("text", "method", "path", "body"),
    [
        ("GET /products/1", "GET", "/products/1", None),
        ("/quote?items=3", "GET", "/quote?items=3", None),
        ('post /orders {"item": "x"}', "POST", "/orders", {"item": "x"}),
        ("  DELETE   /orders/7  ", "DELETE", "/orders/7", None),
    ],
)
def test_route_specs_read_as_typed(text: str, method: str, path: str, body: object) -> None:
    spec = parse_route(text, concurrency=2, duration_s=1.5)
    assert (spec.method, spec.path, spec.json_body) == (method, path, body)
    assert (spec.concurrency, spec.duration_s) == (2, 1.5)


@pytest.mark.parametrize(
    ("text", "ms"), [("50ms", 50.0), ("0.1s", 100.0), ("20", 20.0), (" 7.5 MS ", 7.5)]
)
def test_budgets_read_as_milliseconds(text: str, ms: float) -> None:
    assert parse_ms(text) == ms


@pytest.mark.parametrize("text", ["", "0ms", "-5ms", "50 minutes", "ms"])
def test_a_budget_that_is_no_time_is_refused(text: str) -> None:
    with pytest.raises(SpecError):
        parse_ms(text)


def test_attach_opens_the_view_and_leaves_the_app_running(
    uvicorn_child: Callable[..., str],
) -> None:
    # plain uvicorn under its process manager (--workers): the probe is in the worker
    url = uvicorn_child("server.main:probed", "--workers", "1")
    tui = PtyProcess([sys.executable, "-m", "explorer.cli", "attach", url], columns=120, rows=40)
    try:
        assert tui.wait_for_output(b"/marker", 60), tui.text()[-2000:]
        tui.send(b"q")
        assert tui.wait(20) == 0
    finally:
        tui.close()
    assert probe_info(url)["probe"] == "fastasync_probe"  # still serving: not ours to stop


def this_machines_own_address() -> str:
    """An address of this machine's that is not loopback (the route a packet out takes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        address: str = probe.getsockname()[0]
    assert not address.startswith("127."), "this test needs an interface besides loopback"
    return address


def test_over_the_network_the_probe_answers_403_without_the_token_and_no_data(
    uvicorn_child: Callable[..., str],
) -> None:
    """Real TCP from a non-loopback address (the machine's own eth0): the probe's guard
    sees a client from elsewhere, the app itself still answers."""
    address = this_machines_own_address()
    url = uvicorn_child("server.main:probed", host="0.0.0.0", token="s3cret")
    port = url.rsplit(":", 1)[1]
    remote = f"http://{address}:{port}"
    for path in ("/_fastasync", "/_fastasync/monitor", "/_fastasync/tasks",
                 "/_fastasync/source?file=server/main.py"):  # fmt: skip
        refused = httpx.get(remote + path, timeout=10)
        assert refused.status_code == 403, path
        assert set(refused.json()) == {"detail"}
        assert "server/main.py" not in refused.text
        wrong = httpx.get(remote + path, headers={"authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 403
    opened = httpx.get(remote + "/_fastasync", headers={"authorization": "Bearer s3cret"})
    assert opened.status_code == 200
    assert opened.json()["probe"] == "fastasync_probe"
    assert httpx.get(f"http://127.0.0.1:{port}/_fastasync").status_code == 200  # loopback
    assert httpx.get(remote + "/marker").status_code == 200  # the app answers everyone
