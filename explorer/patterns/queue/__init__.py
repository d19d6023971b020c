"""The durable queue pane: arq workers on Redis against ``BackgroundTasks``, killed and scaled."""
