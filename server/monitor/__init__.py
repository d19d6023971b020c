"""Event-loop monitor: lag histogram, utilization and a stall watchdog (stdlib only)."""

from .attribution import RequestTasks, request_tasks
from .loop_monitor import LoopMonitor, MonitorConfig
from .records import LagStats, LagWindow, MonitorSnapshot, Stall

__all__ = [
    "LagStats",
    "LagWindow",
    "LoopMonitor",
    "MonitorConfig",
    "MonitorSnapshot",
    "RequestTasks",
    "Stall",
    "request_tasks",
]
