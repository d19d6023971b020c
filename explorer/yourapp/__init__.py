"""Your app under the microscope: ``run``, ``attach`` and ``check`` for a user's ASGI app.

The user's app runs in a process of its own with only the probe (``fastasync_probe``) in
it; everything here talks to that probe over HTTP.
"""
