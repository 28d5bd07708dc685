"""The check of a URL input's addresses, made where the connection is made.

The connector asks this resolver for a host's addresses and connects to those it returns: a
host with any address outside ``Config.url_sources`` is refused there, so DNS cannot answer one
address to a check and another to the connection. Literal addresses never reach a resolver;
``check_host`` refuses them before each request.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp import DefaultResolver
from aiohttp.abc import AbstractResolver, ResolveResult

from .._addresses import IPAddress, UrlSources

__all__ = ["GuardedResolver", "RefusedAddress", "check_host"]


class RefusedAddress(OSError):
    """A host that is, or resolves to, an address URL inputs may not be read from. An
    ``OSError``, so that the connector reports it as it reports any failed look-up."""


def _literal(host: str) -> IPAddress | None:
    """The address a host names by itself, in any form a resolver takes (``127.1``,
    ``2130706433``, ``0x7f.1`` are 127.0.0.1 to ``getaddrinfo``)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _refusal(host: str, address: IPAddress) -> RefusedAddress:
    named = "" if str(address) == host.strip("[]") else f" (it resolves to {address})"
    return RefusedAddress(
        f"the host {host!r}{named} is not a public address: URL inputs are only read from "
        "global addresses (to read from your own network, list it in Config(url_sources=...))"
    )


def check_host(host: str, sources: UrlSources) -> None:
    """Refuse a literal address that ``sources`` does not allow (names: see the resolver)."""
    address = _literal(host)
    if address is not None and not sources.allows(address):
        raise _refusal(host, address)


class GuardedResolver(AbstractResolver):
    """The default resolver, and every address it returns checked against ``sources``."""

    def __init__(self, sources: UrlSources) -> None:
        self._sources = sources
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        check_host(host, self._sources)
        results = await self._resolver.resolve(host, port, family)
        if not self._sources.allows_host(host):
            for result in results:
                address = _literal(result["host"])
                # Every address, not just the first: the connector may try any of them.
                if address is None or not self._sources.allows(address):
                    raise _refusal(host, address or ipaddress.ip_address("0.0.0.0"))
        return results

    async def close(self) -> None:
        await self._resolver.close()
