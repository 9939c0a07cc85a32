"""The aiohttp front end: REST routes, middlewares, OpenAPI."""
