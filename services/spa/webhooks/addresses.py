"""Where we may send webhooks: HTTPS to public addresses, unless configuration allows more.

A subscriber could otherwise point us at our own network (a database's admin port, a cloud
metadata service). The host is resolved when a subscription is saved and again before each
delivery; every address it resolves to must be public (globally routable) or in an allowed
network, and the delivery goes to the address that was checked, never to a second lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

import httpx

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_CONTROL = {chr(code) for code in range(0x21)} | {"\x7f"}


class AddressRefused(ValueError):
    """The URL may not receive webhooks; the message says why, for the subscriber."""


def parse_url(text: str, allow_http_hosts: Sequence[str]) -> httpx.URL:
    """The URL as it will be requested, or AddressRefused."""
    if any(character in _CONTROL for character in text):
        raise AddressRefused("the URL must not contain spaces or control characters")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        raise AddressRefused("the URL is not valid; it must be an absolute https URL") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise AddressRefused("the URL must be an absolute https URL")
    if url.userinfo:
        raise AddressRefused("the URL must not carry credentials")
    if url.scheme == "http" and url.host not in allow_http_hosts:
        raise AddressRefused("the URL must use https")
    return url


def _public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 (mapped, 6to4, Teredo) is judged as the IPv4 address.
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None:
            return _public(embedded)
    return address.is_global and not address.is_multicast


async def checked_address(url: httpx.URL, allowed: Sequence[IpNetwork]) -> str:
    """The address to connect to, once every address of the host has passed."""
    addresses = await _resolve(url.host, url.port or (443 if url.scheme == "https" else 80))
    for address in addresses:
        if not _public(address) and not any(address in network for network in allowed):
            raise AddressRefused(
                "the host resolves to a loopback, private, link-local or reserved address"
            )
    return str(addresses[0])


async def _resolve(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]  # an address literal needs no lookup
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise AddressRefused("the host name does not resolve") from None
    if not infos:
        raise AddressRefused("the host name does not resolve")
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def networks(values: Sequence[str]) -> list[IpNetwork]:
    return [ipaddress.ip_network(value, strict=False) for value in values]
