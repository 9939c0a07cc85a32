"""Ray actors. Each is a plain class; ``cluster.py`` applies ``ray.remote``."""
