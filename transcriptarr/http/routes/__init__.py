"""One module per API group; each exposes ``routes``, an ``ApiRoutes``."""
