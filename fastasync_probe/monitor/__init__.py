"""Event-loop monitor: lag histogram, utilization and a stall watchdog, task book (stdlib only)."""

from .attribution import USER_CODE, ProjectCode, RequestTasks, is_library_file, request_tasks
from .lock_owners import label
from .loop_monitor import LoopMonitor, MonitorConfig
from .records import LagStats, LagWindow, MonitorSnapshot, Stall
from .tasks import TaskBook

__all__ = [
    "USER_CODE",
    "LagStats",
    "LagWindow",
    "LoopMonitor",
    "MonitorConfig",
    "MonitorSnapshot",
    "ProjectCode",
    "RequestTasks",
    "Stall",
    "TaskBook",
    "is_library_file",
    "label",
    "request_tasks",
]
