"""The durable queue: jobs on Redis run by arq worker processes, against ``BackgroundTasks``."""
