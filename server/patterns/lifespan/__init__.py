"""Lifespan & context managers: resources opened and closed (``lifespan`` against
``@app.on_event``), and a pooled connection handed back by ``async with`` (or leaked)."""
