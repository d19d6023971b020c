"""The app as a user meets it: the CLI, a real terminal, quitting, ports, leaks."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from explorer.app import ExplorerApp
from explorer.cli import PATTERN_BENCHMARKS, main
from explorer.registry import PANES, key_of
from explorer.tools.bench_kit import free_port as free_port  # also for test_tour, test_shutdown
from explorer.widgets.too_small import TooSmall
from server.settings import Settings
from tests.conftest import eventually
from tests.ptyrun import PtyProcess

EXPLORER = [sys.executable, "-m", "explorer.cli"]


def port_answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/monitor", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# -- in-process: start, serve, quit, leave nothing --------------------------------------


def test_quit_leaves_no_task_thread_socket_or_process() -> None:
    """Start on port 0, use the loop, threadpool and process pool, quit; compare to start.

    Runs in a fresh interpreter (tests/leak_probe.py): the only honest baseline.
    """
    result = subprocess.run(
        [sys.executable, "-m", "tests.leak_probe"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "fastasync-loop-watchdog" in report["threads_while_running"]
    assert report["return_code"] == 0
    assert report["quit_s"] < 3.0
    assert report["tasks_left"] == []
    assert report["threads_left"] == []
    assert report["port_listening"] is False
    # multiprocessing's resource tracker is one per interpreter and ends with it (its pipe
    # is the only descriptor it holds here); the pool's worker processes must be gone.
    assert [c for c in report["children_left"] if "resource_tracker" not in c] == []
    assert len(report["fds_left"]) <= 1
    assert all(fd.startswith("pipe:") for fd in report["fds_left"])


async def test_port_in_use_ends_the_app_with_a_message(taken_port: int) -> None:
    app = ExplorerApp(Settings(port=taken_port))
    async with app.run_test(size=(120, 40)):
        await eventually(lambda: app.return_code is not None, within=5)
        # (read it here: leaving run_test calls exit() again, with code 0)
        assert app.return_code == 2
        assert f"Port {taken_port} on 127.0.0.1 is already in use" in str(app._exit_renderables)
        assert not app.server.running


# -- the CLI ----------------------------------------------------------------------------


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for word in ("--host", "--port", "--blocking", "serve", "bench", "blocking mode", "quit"):
        assert word in text
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    serve_help = capsys.readouterr().out
    assert "--port" in serve_help
    assert "--access-log" in serve_help


@pytest.mark.parametrize("argv", [["--port", "70000"], ["serve", "--port", "-1"]])
def test_bad_port_is_a_message_not_a_traceback(argv: list[str]) -> None:
    result = subprocess.run([*EXPLORER, *argv], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "--port must be 0 to 65535" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_answers_and_stops_cleanly_on_sigint_and_sigterm() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        port = free_port()
        server = subprocess.Popen(
            [*EXPLORER, "serve", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_until(lambda p=port: port_answers(p), 20), "serve did not come up"
            index = httpx.get(f"http://127.0.0.1:{port}/").json()
            assert index["patterns"] == [pane.SLUG for pane in PANES]
            server.send_signal(sig)
            _, err = server.communicate(timeout=10)
            assert server.returncode == 0, err
            assert f"serving on http://127.0.0.1:{port}" in err
            assert "Traceback" not in err
            assert not port_answers(port)
        finally:
            if server.poll() is None:
                server.kill()
                server.communicate()


def test_serve_on_a_taken_port_says_so(taken_port: int) -> None:
    result = subprocess.run(
        [*EXPLORER, "serve", "--port", str(taken_port)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert f"Port {taken_port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_unusable_data_dir_is_a_sentence_for_serve_and_the_tui(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    expected = f"The data directory {a_file / 'data'} is not a directory."
    served = subprocess.run(
        [*EXPLORER, "serve", "--port", "0", "--data-dir", str(a_file / "data")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert served.returncode == 2
    assert expected in served.stderr
    assert "Traceback" not in served.stderr
    tui = PtyProcess([*EXPLORER, "--port", "0", "--data-dir", str(a_file / "data")])
    try:
        assert tui.wait(30) == 2
        assert expected in tui.text()
        assert "Traceback" not in tui.text()
        assert termios.tcgetattr(tui.slave) == tui.termios_before
    finally:
        tui.close()


def test_serve_warns_when_bound_beyond_loopback() -> None:
    port = free_port()
    server = subprocess.Popen(
        [*EXPLORER, "serve", "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: port_answers(port), 20)
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=10)
        assert "warning: listening on 0.0.0.0" in err
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


# -- a real terminal --------------------------------------------------------------------


def test_tui_in_a_terminal_quits_within_3s_and_restores_it() -> None:
    port = free_port()
    tui = PtyProcess([*EXPLORER, "--port", str(port)])
    try:
        assert wait_until(lambda: port_answers(port), 30), tui.text()[-2000:]
        assert tui.wait_for_output(b"fastasync-explorer", 10)
        assert tui.wait_for_output(b"Basics", 10)
        time.sleep(0.5)
        pressed = time.monotonic()
        tui.send(b"q")
        code = tui.wait(5)
        took = time.monotonic() - pressed
        assert code == 0, tui.text()[-2000:]
        assert took < 3.0
        output = tui.output
        assert b"Traceback" not in output
        tail = output[output.rfind(b"\x1b[?1049h") :]
        assert b"\x1b[?1049l" in tail  # left the alternate screen
        assert b"\x1b[?25h" in tail  # cursor shown again
        assert termios.tcgetattr(tui.slave) == tui.termios_before  # cooked mode is back
        assert not port_answers(port)
    finally:
        tui.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=str)
def test_tui_signalled_quits_like_q_and_restores_the_terminal(sig: signal.Signals) -> None:
    port = free_port()
    tui = PtyProcess([*EXPLORER, "--port", str(port)])
    try:
        assert wait_until(lambda: port_answers(port), 30), tui.text()[-2000:]
        assert tui.wait_for_output(b"Basics", 10)
        time.sleep(0.5)
        tui.process.send_signal(sig)
        code = tui.wait(15)  # bounded, with room for a loaded 2-core machine
        assert code == 0, (code, tui.text()[-2000:])
        output = tui.output
        assert b"Traceback" not in output
        tail = output[output.rfind(b"\x1b[?1049h") :]
        assert b"\x1b[?1049l" in tail
        assert b"\x1b[?25h" in tail
        assert termios.tcgetattr(tui.slave) == tui.termios_before
        assert not port_answers(port)
    finally:
        tui.close()


def test_tui_on_a_taken_port_prints_a_sentence_not_a_traceback(taken_port: int) -> None:
    tui = PtyProcess([*EXPLORER, "--port", str(taken_port)])
    try:
        assert tui.wait(30) == 2
        text = tui.text()
        assert f"Port {taken_port} on 127.0.0.1 is already in use" in text
        assert "Traceback" not in text
        assert termios.tcgetattr(tui.slave) == tui.termios_before
    finally:
        tui.close()


async def test_a_too_small_terminal_gets_a_notice_until_it_grows(tmp_path: Path) -> None:
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path / "data"))
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: app.context is not None)
        notice = app.query_one(TooSmall)
        assert notice.display
        assert "80×24" in str(notice.render())
        assert "at least 100×30" in str(notice.render())
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not notice.display
        await pilot.resize_terminal(120, 20)
        await pilot.pause()
        assert notice.display
        await pilot.press("q")
    assert app.return_code == 0


def test_bench_help_names_every_patterns_own_benchmark(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert {"ws", "stream", "db", "cache"} <= set(PATTERN_BENCHMARKS)
    with pytest.raises(SystemExit) as exited:
        main(["bench", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "--duration" in text
    assert "{" + ",".join(PATTERN_BENCHMARKS) + "}" in text


@pytest.mark.parametrize("pattern", list(PATTERN_BENCHMARKS))
def test_bench_runs_each_patterns_own_benchmark(
    pattern: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bench", pattern, "--help"])
    assert exited.value.code == 0
    assert f"explorer.patterns.{pattern}.bench" in capsys.readouterr().out


async def test_focus_follows_the_pane_so_the_keys_stay_the_apps(tmp_path: Path) -> None:
    """Visiting every pane by its digit leaves focus in the visible pane, and q still quits."""
    app = ExplorerApp(Settings(port=0, data_dir=tmp_path / "data"))
    async with app.run_test(size=(140, 45)) as pilot:
        await eventually(lambda: app.context is not None and app.current_pane() is not None)
        for index in [*range(len(PANES)), 0, len(PANES) - 1, 1]:
            digit = key_of(index)
            assert digit is not None
            await pilot.press(digit)
            await pilot.pause(0.2)
            pane = app.current_pane()
            assert pane is not None
            assert pane.SLUG == PANES[index].SLUG
            focused = app.focused
            assert focused is None or pane in focused.ancestors_with_self, (digit, focused)
        await pilot.press("q")
        await pilot.pause(3)
    assert app.return_code == 0
