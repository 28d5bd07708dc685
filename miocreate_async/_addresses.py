"""Which addresses a URL input may be read from: the rule against server-side request forgery.

A bot or a web app passes its users' URLs to the client, which reads them from its own host. By
default only global addresses are read: never loopback, private, link-local (the cloud metadata
service at 169.254.169.254), shared, reserved, multicast or unspecified addresses, nor such an
address written as IPv4-mapped, NAT64 or 6to4. ``Config(url_sources=...)`` opts in to more.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import attrs

from ._errors import ConfigurationError

__all__ = ["ANY", "IPAddress", "IPNetwork", "UrlSources", "is_public", "url_sources"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: ``Config(url_sources=ANY)``: read URL inputs from any address (a trusted caller only).
ANY = "any"

# Networks whose addresses stand for an IPv4 address, which is then the one checked.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a global unicast address, in every form it may be written."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(address.packed)  # without a scope id ("%eth0")
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
        if address in _NAT64_LOCAL:
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches (IPv4-mapped, NAT64, 6to4), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


@attrs.frozen
class UrlSources:
    """Where URL inputs may be read from, beyond global addresses."""

    #: Any address at all.
    any: bool = False
    #: Networks allowed too (``10.0.0.0/8``, ``127.0.0.1``).
    networks: tuple[IPNetwork, ...] = ()
    #: Host names allowed whatever they resolve to (lower case).
    hosts: frozenset[str] = frozenset()

    def allows_host(self, host: str) -> bool:
        """Whether the host name itself is trusted (its addresses are then not checked)."""
        return self.any or host.rstrip(".").lower() in self.hosts

    def allows(self, address: IPAddress) -> bool:
        return self.any or is_public(address) or any(address in net for net in self.networks)

    def including(self, host: str) -> UrlSources:
        """These sources, and ``host`` (an address or a name) too."""
        more = url_sources([host])
        return UrlSources(self.any, self.networks + more.networks, self.hosts | more.hosts)


def url_sources(value: UrlSources | str | Iterable[str | IPNetwork] | None) -> UrlSources:
    """``Config.url_sources`` from what a user passes: None (global addresses only), ``"any"``,
    or networks and host names (``["10.0.0.0/8", "files.internal"]``)."""
    if isinstance(value, UrlSources):
        return value
    if value is None:
        return UrlSources()
    if isinstance(value, str):
        if value.strip().lower() == ANY:
            return UrlSources(any=True)
        value = [part for part in value.split(",") if part.strip()]
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for item in value:
        if isinstance(item, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            networks.append(item)
            continue
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(
                f"url_sources takes networks and host names (or 'any'), got {item!r}"
            )
        text = item.strip().strip("[]")
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            if "/" in text or ":" in text or " " in text:
                raise ConfigurationError(f"url_sources: {item!r} is no network nor host") from None
            hosts.add(text.rstrip(".").lower())
    return UrlSources(networks=tuple(networks), hosts=frozenset(hosts))
