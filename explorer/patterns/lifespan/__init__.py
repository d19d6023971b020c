"""lifespan."""
