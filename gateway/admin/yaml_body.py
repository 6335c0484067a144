"""YAML bodies of the admin API, parsed with bounded work: a few aliases can
expand to billions of nodes ("billion laughs"), so aliases, nodes and the
expanded size are capped, and the caller parses in a thread with a time cap."""
from __future__ import annotations

from typing import Any

import yaml

MOST_ALIASES = 100          # a hand-written config uses a handful of anchors
MOST_NODES = 20_000         # nodes as written; a large config has a few thousand (pure-Python parse: ~0.5 s)
MOST_EXPANDED = 1_000_000   # nodes once every alias is expanded
# Collections inside collections. A config nests a handful deep; the scanner's work per token grows
# with the depth of `[`/`{` it is in, so 3,000 of them took 2 s to refuse by recursion alone.
MOST_DEPTH = 100


class TooMuchYaml(yaml.YAMLError):
    """The document is over one of the caps."""


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._nodes = 0
        self._depth = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MOST_DEPTH:
            raise TooMuchYaml("nested too deeply")
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._nodes += 1
        if self._nodes > MOST_NODES:
            raise TooMuchYaml(f"more than {MOST_NODES} nodes")
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MOST_ALIASES:
                raise TooMuchYaml(f"more than {MOST_ALIASES} aliases")
        self._depth += 1
        if self._depth > MOST_DEPTH:
            raise TooMuchYaml("nested too deeply")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes under `node` with aliases expanded, each shared node counted once per use."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = MOST_EXPANDED + 1       # a node inside itself (a recursive alias) counts as too much
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            total += _expanded(item, sizes)
            if total > MOST_EXPANDED:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded(k, sizes) + _expanded(v, sizes)
            if total > MOST_EXPANDED:
                break
    sizes[id(node)] = total
    return total


def parse_yaml(body: bytes) -> Any:
    """The document, or yaml.YAMLError (TooMuchYaml past a cap)."""
    loader = _BoundedLoader(body)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded(node, {}) > MOST_EXPANDED:
            raise TooMuchYaml(f"more than {MOST_EXPANDED} nodes once its aliases are expanded")
        return loader.construct_document(node)
    except RecursionError:
        raise TooMuchYaml("nested too deeply") from None
    finally:
        loader.dispose()
