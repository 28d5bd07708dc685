"""Which proxy a request goes through: the standard environment variables, loopback excepted.

``HTTPS_PROXY`` for https URLs, ``HTTP_PROXY`` for http ones (either case, as curl and urllib
read them), none for a host that ``NO_PROXY`` names. A loopback host (``localhost``,
``127.0.0.0/8``, ``::1``: the emulator) is always reached directly, as Go's HTTP client does:
a proxy elsewhere cannot reach this machine's loopback, so an office-wide ``HTTPS_PROXY`` must
not break the emulator or the test suite.

Resolved here rather than by aiohttp's ``trust_env=True``: that looks the proxy up in a worker
thread, and ``~/.netrc`` in another, on every request (about twice the CPU time of an API
call), and adds ``.netrc`` credentials that clash with the API's ``Authorization`` header.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass  # aiohttp imports urllib.request already

__all__ = ["is_loopback", "proxy_for"]


def proxy_for(url: str) -> str | None:
    """The proxy URL to send a request for ``url`` through, or None (directly). Reads the
    environment on each call: callers keep the answer for as long as it should hold."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or is_loopback(host) or proxy_bypass(host):
        return None
    return getproxies().get(parts.scheme) or None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
