"""The SSRF guard: which outbound URLs a user may make the gateway fetch.

No test here needs DNS: literal IPs resolve without a network and `localhost`
resolves from /etc/hosts.
"""
from __future__ import annotations

import asyncio

import pytest

from gateway.netguard import BlockedURL, blocked_reason, check_url
from providers import netcheck


def check(url: str, **kw) -> None:
    asyncio.run(check_url(url, **kw))


def refused(url: str, **kw) -> str:
    with pytest.raises(BlockedURL) as e:
        check(url, **kw)
    return str(e.value)


@pytest.mark.parametrize("url, reason", [
    ("http://localhost:8080/hook", "loopback"),
    ("http://127.0.0.1/", "loopback"),
    ("http://127.9.9.9/", "loopback"),
    ("http://[::1]:9000/", "loopback"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://169.254.0.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://100.64.0.1/", "shared"),
    ("http://100.127.255.254/", "shared"),
    ("http://240.0.0.1/", "address"),         # reserved (class E)
    ("http://255.255.255.255/", "address"),
    ("http://192.0.2.1/", "address"),         # documentation range, never a real host
])
def test_each_non_public_class_is_refused(url, reason):
    assert reason in refused(url)


@pytest.mark.parametrize("url", [
    "http://2130706433/",               # decimal
    "http://0x7f.1/",                   # hex, short form
    "http://0x7f000001/",
    "http://0177.0.0.1/",               # octal
    "http://127.1/",
    "http://0/",                        # 0.0.0.0, which reaches the local host on Linux
    "http://[::ffff:127.0.0.1]/",       # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",     # NAT64 of 169.254.169.254
    "http://[2002:7f00:1::]/",          # 6to4 of 127.0.0.1
    "http://[::127.0.0.1]/",            # IPv4-compatible (deprecated)
    "http://LOCALHOST./",
    "http://user:pw@127.0.0.1/",
    "https://8.8.8.8@127.0.0.1/",
])
def test_every_literal_notation_is_caught(url):
    refused(url)


@pytest.mark.parametrize("url", [
    "http://93.184.216.34/",
    "https://8.8.8.8:8443/hook?x=1",
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/",         # mapped public IPv4 is judged as that IPv4
    "http://[64:ff9b::808:808]/",       # NAT64 of 8.8.8.8
    "http://134744072/",                # 8.8.8.8 in decimal
])
def test_public_literal_passes(url):
    check(url)


@pytest.mark.parametrize("url, words", [
    ("ftp://8.8.8.8/", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("gopher://127.0.0.1:6379/_INFO", "http or https"),
    ("8.8.8.8/hook", "http or https"),
    ("", "http or https"),
    ("http:///path", "no host"),
    ("http://", "no host"),
    ("https://:443/", "no host"),
    ("http://8.8.8.8:99999/", "malformed"),
    ("http://8.8.8.8:port/", "malformed"),
    ("http://127.0.0.1\\@8.8.8.8/", "backslash"),
    ("http://8.8.8.8/\nHost: x", "control"),
])
def test_bad_scheme_or_missing_host_is_refused(url, words):
    assert words in refused(url)


def test_unresolvable_host_is_refused():
    assert "does not resolve" in refused("http://no-such-host.invalid/")


def test_slow_resolution_is_refused(monkeypatch):
    async def slow(*a, **kw):
        await asyncio.sleep(10)

    async def go():
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", slow)
        await check_url("http://hooks.example.com/")

    monkeypatch.setattr(netcheck, "RESOLVE_TIMEOUT_S", 0.05)   # the check lives there
    with pytest.raises(BlockedURL, match="did not resolve within"):
        asyncio.run(go())


def test_any_private_address_among_several_refuses(monkeypatch):
    import socket

    async def two(host, port, **kw):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]

    async def go():
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", two)
        await check_url("http://rebind.example.com/")

    with pytest.raises(BlockedURL, match="10.0.0.5"):
        asyncio.run(go())


def test_allow_private_permits_every_class_but_still_needs_a_host_that_resolves():
    for url in ["http://localhost:8080/", "http://10.0.0.1/", "http://169.254.169.254/",
                "http://[::1]/", "http://2130706433/"]:
        check(url, allow_private=True)
    refused("http://no-such-host.invalid/", allow_private=True)
    refused("ftp://127.0.0.1/", allow_private=True)


@pytest.mark.parametrize("url, allow", [
    ("http://localhost:8080/", ["localhost"]),
    ("http://localhost:8080/", ["localhost:8080"]),
    ("http://127.0.0.1:9000/", ["127.0.0.1"]),
    ("http://[::1]:9000/", ["[::1]:9000"]),
    ("http://[::1]/", ["::1"]),
    ("https://hooks.corp.internal/", ["*.corp.internal"]),
    ("https://a.b.corp.internal:443/", ["other.test", "*.corp.internal:443"]),
    ("http://Hooks.Corp.Internal./", ["*.CORP.internal"]),
])
def test_allow_list_admits_listed_hosts(url, allow):
    check(url, allow=allow)


@pytest.mark.parametrize("url, allow", [
    ("http://localhost:8080/", ["localhost:9090"]),         # other port
    ("https://localhost/", ["localhost:80"]),               # default port counts
    ("http://127.0.0.1/", ["localhost"]),                   # names are not resolved to match
    ("http://corp.internal/", ["*.corp.internal"]),         # a glob needs a subdomain
    ("http://evilcorp.internal/", ["*.corp.internal"]),
    ("http://127.0.0.1/", ["127.0.0.1.example.com"]),
])
def test_allow_list_is_exact(url, allow):
    refused(url, allow=allow)


def test_blocked_reason_for_a_connected_peer():
    assert blocked_reason("8.8.8.8") is None
    assert blocked_reason("::ffff:127.0.0.1") == "a loopback address"
    assert "link-local" in blocked_reason("169.254.169.254")
