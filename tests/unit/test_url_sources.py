"""Which addresses URL inputs may be read from: every non-global form is refused."""

from __future__ import annotations

import ipaddress

import pytest

from miocreate_async import Config, ConfigurationError
from miocreate_async._addresses import is_public, url_sources

REFUSED = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "0.0.0.0",
    "100.64.0.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1",
    "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2002:7f00:1::1", "2002:a00:1::1",
    "::127.0.0.1", "2001:db8::1", "fe80::1%eth0",
]  # fmt: skip
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_global_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    assert not Config().url_sources.allows(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED)
def test_global_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_the_opt_in_takes_networks_hosts_and_any() -> None:
    sources = url_sources(["10.0.0.0/8", "Files.Internal.", "[::1]"])
    assert sources.allows(ipaddress.ip_address("10.9.9.9"))
    assert sources.allows(ipaddress.ip_address("::1"))
    assert not sources.allows(ipaddress.ip_address("192.168.0.1"))
    assert sources.allows_host("files.internal")
    assert url_sources("any").allows(ipaddress.ip_address("127.0.0.1"))
    assert Config.from_env({"MIOCREATE_URL_SOURCES": "127.0.0.0/8"}).url_sources.allows(
        ipaddress.ip_address("127.0.0.5")
    )
    with pytest.raises(ConfigurationError):
        Config(url_sources=["10.0.0.0/33"])
