"""Settings every test process needs before Ray is imported."""

import os

# Ray reads these once, on import: token auth on, and a local head that
# advertises and binds loopback only (see cli.py).
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
