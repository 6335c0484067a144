"""Fake upstreams: real HTTP servers on loopback speaking a provider's wire format."""
