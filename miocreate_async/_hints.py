"""What a failed connection means, and what to do about it, in the error a user reads.

A connection that fails for a reason no retry can fix (nothing listening at a base URL never
reached, ``https://`` to a plain-HTTP port, an unknown host, a proxy refusing the tunnel) gives
a ``ConnectError`` marked ``permanent``: the retry loop raises it at once, with the URL and the
likely fix, instead of trying it again for seconds. Nothing was sent to the API in any of these
cases, so this never re-sends a creation that may have reached the service.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import aiohttp

from ._errors import ConnectError
from ._redact import redact_url

__all__ = ["BASE_URL_HINT", "connect_error"]

#: Where a user corrects the base URL.
BASE_URL_HINT = "check base_url (or MIOCREATE_BASE_URL)"


def connect_error(
    exc: aiohttp.ClientError, url: str, *, proxy: str | None, reached: bool, operation: str
) -> ConnectError | None:
    """The ConnectError for a failure before the request was sent, or None for any other.

    ``reached``: this client has had a reply from the API before, so the URL is right and a
    refused connection or a failed look-up is likely a restart, worth the retry policy.
    """
    shown = redact_url(url)
    origin = _origin(url)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        # The proxy answered the CONNECT with an error: the API was never reached.
        error = ConnectError(
            f"the proxy {redact_url(proxy or '')} refused to connect to {origin}: HTTP "
            f"{exc.status} {exc.message}; check its credentials (in the HTTPS_PROXY/HTTP_PROXY "
            "URL) or name the API host in NO_PROXY",
            operation=operation,
        )
        error.permanent = exc.status not in (502, 503, 504)
        return error
    if not isinstance(exc, aiohttp.ClientConnectorError):
        return None
    reason = _reason(exc)
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        message = (
            f"cannot connect to the proxy {redact_url(proxy or '')} for {shown}: {reason}; "
            "check HTTPS_PROXY/HTTP_PROXY, or name the API host in NO_PROXY"
        )
        permanent = not reached
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError):
        message = (
            f"the TLS certificate of {origin} failed verification ({reason}); behind a proxy "
            "that inspects TLS, point SSL_CERT_FILE at its CA bundle"
        )
        permanent = True
    elif isinstance(exc, aiohttp.ClientSSLError):
        message = (
            f"no TLS handshake with {origin} ({reason}): is it a plain-HTTP port? Use http:// "
            f"for it, or the port of its HTTPS server; {BASE_URL_HINT}"
        )
        permanent = True
    elif isinstance(exc, aiohttp.ClientConnectorDNSError):
        message = (
            f"cannot resolve the host of {origin} ({reason}): {BASE_URL_HINT} for a typo; "
            "the API is at https://devapi.miocreate.com"
        )
        permanent = not reached
    elif isinstance(exc.os_error, ConnectionRefusedError):
        message = (
            f"nothing is listening at {origin} (connection refused): {BASE_URL_HINT} and its "
            "port; for the emulator, start it first (`miocreate emulator`)"
        )
        permanent = not reached
    else:
        message, permanent = f"cannot connect to {shown}: {reason}", False
    error = ConnectError(message, operation=operation)
    error.permanent = permanent
    return error


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_url(url)
    return redact_url(f"{parts.scheme}://{parts.netloc}")


def _reason(exc: aiohttp.ClientConnectorError) -> str:
    os_error = exc.os_error
    if isinstance(os_error, ssl.SSLError):
        return os_error.reason or type(os_error).__name__
    return os_error.strerror or str(os_error) or type(os_error).__name__
