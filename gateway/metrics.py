"""Counters in Prometheus's text format, kept in process (each worker process
exports its own; Prometheus adds them up).

Counting is a dict update on the event loop: no lock, no I/O on the request path.
"""
from __future__ import annotations

from collections import defaultdict

_HELP = {
    "gateway_state_store_errors_total": "Calls to the state store (Redis) that failed or timed out.",
    "gateway_rate_limited_total": "Requests refused by a limit or budget, by what refused them.",
    "gateway_unpriced_requests_total": "Answered requests whose provider/model has no price (recorded at cost 0).",
}


class Counters:
    def __init__(self) -> None:
        self._values: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(lambda: defaultdict(float))

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._values[name][tuple(sorted(labels.items()))] += amount

    def value(self, name: str, **labels: str) -> float:
        return self._values.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> bytes:
        lines = []
        for name, help_text in _HELP.items():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} counter")
            for labels, value in sorted(self._values.get(name, {}).items()):
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
        return ("\n".join(lines) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


COUNTERS = Counters()
