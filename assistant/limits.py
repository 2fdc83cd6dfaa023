"""Rate limits (Flask-Limiter): sign-in attempts per address, and the webhook per sender address.

Counts are per process (in memory); behind several workers the effective limit
is that many times higher, which still stops a flood.
"""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, storage_uri="memory://", default_limits=[], headers_enabled=False)
SIGN_IN = "10 per minute"
