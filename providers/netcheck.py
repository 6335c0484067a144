"""The SSRF guard for every outbound URL the gateway did not choose itself.

A callback URL, a webhook endpoint, an `input_reference` URL or a file URL a
hosted video provider hands back is fetched by the gateway from inside its
own network, so a user (or an upstream) could aim it at loopback,
a private service or the cloud metadata address (169.254.169.254). The host is
resolved and every address it resolves to must be public, unless the operator
allows private addresses or lists the host.

This check runs at submission time; a name can resolve differently later (DNS
rebinding), so the code that connects should check the peer it actually
reached with `blocked_reason` too (aiohttp clients: `guarded_resolver.py`).
"""
from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

RESOLVE_TIMEOUT_S = 2.0

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_AMBIGUOUS = re.compile(r"[\\\x00-\x20\x7f]")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedURL(ValueError):
    """The URL may not be fetched; the message says why, in the user's words."""


def blocked_reason(ip: IPAddress | str) -> str | None:
    """Why the gateway must not connect to `ip`, or None when it is a public address."""
    ip = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    ip = _embedded_ipv4(ip) or ip
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address (this covers cloud metadata)"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


async def check_url(url: str, *, allow_private: bool = False, allow: Iterable[str] = ()) -> None:
    """Raise `BlockedURL` unless `url` is http(s) to a host whose every address is public.

    `allow` lists hosts (`hooks.internal`, `hooks.internal:8443`, `*.corp.example`)
    that are trusted as they are: they are neither resolved nor checked.
    `allow_private` permits non-public addresses, but the host must still resolve.
    """
    if _AMBIGUOUS.search(url):
        # Parsers disagree on these (WHATWG reads a backslash as "/"), so the host we
        # check might not be the host the HTTP client connects to.
        raise BlockedURL(f"URL {url!r} contains a backslash, whitespace or control character")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise BlockedURL(f"URL {url!r} is malformed: {e}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise BlockedURL(f"URL {url!r} must use http or https")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BlockedURL(f"URL {url!r} has no host")
    if port is None:
        port = _DEFAULT_PORTS[parts.scheme]
    if host_allowed(host, port, allow):
        return
    for ip in await _resolve(host, port):
        reason = blocked_reason(ip)
        if reason and not allow_private:
            raise BlockedURL(f"URL {url!r} points to {reason} ({ip}); "
                             "such addresses are refused unless the gateway allows private URLs")


async def _resolve(host: str, port: int) -> list[IPAddress]:
    # getaddrinfo also normalises literal IPs in any notation inet_aton accepts
    # (2130706433, 0x7f.1, 0177.0.0.1, 127.1), so they are judged as addresses.
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise BlockedURL(f"host {host!r} did not resolve within {RESOLVE_TIMEOUT_S:g} s") from None
    except (OSError, UnicodeError) as e:
        raise BlockedURL(f"host {host!r} does not resolve: {e}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise BlockedURL(f"host {host!r} does not resolve")
    return addresses


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4), which decides where it goes."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def host_allowed(host: str, port: int, allow: Iterable[str]) -> bool:
    """Whether `host:port` is on the operator's allow-list."""
    return any(_allowed(host, port, entry) for entry in allow)


def _allowed(host: str, port: int, entry: str) -> bool:
    pattern, entry_port = _split_entry(entry.strip().lower())
    if entry_port is not None and entry_port != port:
        return False
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    if pattern == host:
        return True
    try:
        return ipaddress.ip_address(pattern) == ipaddress.ip_address(host)
    except ValueError:
        return False


def _split_entry(entry: str) -> tuple[str, int | None]:
    """`name`, `name:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal -> (host, port)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:
        host, port = entry, ""
    return host.rstrip("."), int(port) if port.isdigit() else None
