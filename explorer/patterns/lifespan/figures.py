"""The Lifespan pane's figures, in words: the pool's gauge, a child app's life, a drain."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from explorer.patterns.lifespan.client import Drain, PoolStep

FORM_NAMES = {
    "lifespan": "lifespan (corrected)",
    "naive": "lifespan (the guide's snippet)",
    "on_event": "@app.on_event",
}


def idle_bar(gauge: dict[str, Any] | None) -> Text:
    """``idle ██████████ 5/5``: two cells per connection, full while idle."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if not gauge:
        return text.append("idle ? (no reading)", style="dim")
    size, idle = max(1, int(gauge["size"])), int(gauge["idle"])
    style = "green" if idle == size else "bold red" if idle == 0 else "yellow"
    text.append("idle ")
    text.append("██" * idle, style=style)
    text.append("░░" * (size - idle), style="dim")
    text.append(f" {idle}/{size}", style=style)
    return text


def gauge_text(gauge: dict[str, Any] | None) -> Text:
    """The pool's live line (one line, under 70 cells)."""
    text = Text("pool ", style="bold", no_wrap=True, overflow="ellipsis")
    text.append_text(idle_bar(gauge))
    if gauge:
        leaked = int(gauge["leaked"])
        text.append(f" · in use {gauge['in_use']}")
        text.append(f" · leaked {leaked}", style="bold red" if leaked else "")
        text.append(f" · waiters {gauge['waiters']}")
    return text


def leftovers_text(leftovers: int | None) -> Text:
    """The app demo's live line: what runs have left open on the server."""
    text = Text("left open by runs so far: ", style="bold", no_wrap=True, overflow="ellipsis")
    if leftovers is None:
        return text.append("- (run one)", style="dim")
    text.append(str(leftovers), style="bold red" if leftovers else "green")
    if leftovers:
        text.append(" · Clean up closes them", style="dim")
    return text


def life_verdict(life: dict[str, Any]) -> Text:
    """What the child app's life comes to, in one line."""
    text = Text(f"{FORM_NAMES[life['form']]}: ", style="bold")
    text.append("started, served, stopped" if life["served"] else "startup failed")
    opened, left = life["opened"], life["still_open"]
    if left:
        text.append(f" · LEFT OPEN: {', '.join(left)}", style="bold red")
        text.append(f" ({len(left)} of {len(opened)} opened)")
    else:
        text.append(f" · closed all it opened ({', '.join(opened) or 'nothing'})", style="green")
    return text


def life_body(life: dict[str, Any]) -> Text:
    """The ordered event log, then the warnings and globals it came with."""
    text = Text()
    for event in life["events"]:
        text.append(f"{event['at_ms']:>7.1f} ms  ", style="dim")
        style = "red" if "failed" in event["text"] else "green" if "closed" in event["text"] else ""
        text.append(f"{event['text']}\n", style=style)
    for warning in life["warnings"]:
        text.append(f"warned: {warning}\n", style="yellow")
    if life["globals_used"]:
        text.append(f"resources kept in module globals: {', '.join(life['globals_used'])}\n")
    return text


def _step_line(step: PoolStep) -> Text:
    text = Text(f"#{step.n:<2} {step.status} ", style="bold")
    if step.status == 503:
        what = "acquire timed out: no free connection"
    elif "never released" in step.detail:
        what = "failed, connection never released"
    elif step.status == 409:
        what = "failed, rolled back and released"
    else:
        what = "committed, released"
    text.append(f"{what:<38}", style="red" if step.status == 503 else "")
    text.append_text(idle_bar(step.gauge))
    return text


def drain_verdict(run: Drain) -> Text:
    """What the failing requests did to the pool, in one line."""
    text = Text(f"{len(run.steps)} failing requests: ", style="bold")
    if not run.steps:
        return text.append("none sent")
    last = run.steps[-1].gauge
    timeouts = sum(step.status == 503 for step in run.steps)
    leaked = int(last.get("leaked", 0))
    if leaked == 0 and timeouts == 0:
        text.append(f"the pool stayed full (idle {last['idle']} of {last['size']})", style="green")
        return text
    text.append(f"{leaked} connections leaked, one per failing request", style="bold red")
    if timeouts:
        text.append(f"; then {timeouts} acquire(s) timed out (503)", style="bold red")
    text.append(f" · idle {last['idle']} of {last['size']}")
    return text


def drain_body(run: Drain) -> Text:
    """Request by request: its answer and the gauge right after it."""
    text = Text()
    if run.returned_first:
        text.append(f"reset first: {run.returned_first} leaked connection(s) given back\n", "dim")
    for step in run.steps:
        text.append_text(_step_line(step))
        text.append("\n")
    return text
