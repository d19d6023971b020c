"""Event-loop monitor: lag histogram, utilization and a stall watchdog, task book (stdlib only)."""

from .attribution import RequestTasks, request_tasks
from .lock_owners import label
from .loop_monitor import LoopMonitor, MonitorConfig
from .records import LagStats, LagWindow, MonitorSnapshot, Stall
from .tasks import TaskBook

__all__ = [
    "LagStats",
    "LagWindow",
    "LoopMonitor",
    "MonitorConfig",
    "MonitorSnapshot",
    "RequestTasks",
    "Stall",
    "TaskBook",
    "label",
    "request_tasks",
]
