"""Webhooks: events about video jobs, signed so a receiver can verify them.

`signing` builds and signs the events (Standard Webhooks, as the `openai`
SDK's `webhooks.unwrap` verifies them).
"""
