"""What the guide-fixes tab draws from a run's figures: the verdict and the per-caller log."""

from __future__ import annotations

from rich.text import Text

from explorer.patterns.correctness.guide_client import Burst, Stored


def burst_verdict(burst: Burst) -> Text:
    """The burst's lesson, read from its figures."""
    n, failed = len(burst.callers), burst.failed
    runs = f"runs: {burst.runs}"
    if failed:
        served = [caller for caller in burst.callers if caller.status < 400]
        last = (
            f", {len(served)} waited {max(c.waited_ms for c in served) / 1000:.2f} s"
            if (served)
            else ""
        )
        return Text.assemble(
            (f"{n} callers, {len(failed)} failed with CancelledError", "bold red"),
            f" (each until the next trigger){last} for the run; {runs}",
        )
    slowest = max(caller.waited_ms for caller in burst.callers)
    style = "bold green" if burst.runs == 1 else "bold yellow"
    return Text.assemble(
        (f"{n} callers answered in ≤{slowest:.0f} ms, {burst.runs} run", style),
        f" ({burst.delay_s:g} s after the last trigger): none waited, none failed",
    )


def burst_log(burst: Burst) -> Text:
    """One line per caller: when it started, how long it waited, what it got."""
    text = Text()
    for caller in burst.callers:
        style = "red" if caller.status >= 400 else "green"
        text.append(f"caller {caller.n:>2}  waited {caller.waited_ms:7.1f} ms  ")
        text.append(f"{caller.status} {caller.outcome}\n", style=style)
    text.append(f"key {burst.triggers} triggers, {burst.runs} run(s)", style="bold")
    return text


def upload_verdict(stored: Stored) -> Text:
    """Where the upload went (or why it was refused), in the colour of what it means."""
    if stored.status != 200:
        return Text(f"{stored.status}: {stored.detail}", style="bold yellow")
    style = "bold red" if stored.body["escaped"] else "bold green"
    return Text(stored.detail, style=style)


def upload_log(stored: Stored) -> Text:
    """The upload's answer, field by field."""
    text = Text(f"filename sent: {stored.filename!r}\n")
    if stored.status == 200:
        body = stored.body
        text.append(f"form: {body['form']}   stored as: {body['stored_as']}   ")
        text.append(f"size: {body['size']} bytes   escaped: {body['escaped']}")
    else:
        text.append(f"HTTP {stored.status}: nothing written")
    return text
