"""The SSRF guard for every outbound URL a user supplies: it lives in
providers/netcheck.py, since hosted video downloads need it too and
`providers/` imports nothing from `gateway/`. Its resolver for aiohttp clients is
providers/guarded_resolver.py, imported where such a client is made."""
from providers.netcheck import BlockedURL, blocked_reason, check_url, host_allowed

__all__ = ["BlockedURL", "blocked_reason", "check_url", "host_allowed"]
