"""The Your app view's own widgets: they show typed records and do no I/O."""
