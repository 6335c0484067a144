"""The SSRF guard for every outbound URL a user supplies: it lives in
providers/netcheck.py, since hosted video downloads need it too and
`providers/` imports nothing from `gateway/`."""
from providers.netcheck import BlockedURL, GuardedResolver, blocked_reason, check_url, host_allowed

__all__ = ["BlockedURL", "GuardedResolver", "blocked_reason", "check_url", "host_allowed"]
