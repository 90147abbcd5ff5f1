"""Request parameters as retailCRM clients send them (retailcrm-api-v5.md §1.3–1.4).

PHP clients send `filter[ids][0]=1`, the Python and Go clients `filter[ids][]=1`, everyone sends plain
scalars, and entity fields arrive as a JSON string inside a form field, as bracketed form arrays, or
(for our own clients) in a JSON body. All of them end up as the same nested dict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

_KEY = re.compile(r"^([^\[\]]*)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
MAX_DEPTH = 8

TRUE = {"1", "true", "y", "yes", "on"}
FALSE = {"0", "false", "n", "no", "off", ""}


class ParameterError(ValueError):
    """A parameter that cannot be read; `name` is the parameter's bracketed name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _path(name: str) -> list[str]:
    match = _KEY.match(name)
    if not match or not match.group(1):
        return [name]
    parts = [match.group(1), *_PART.findall(match.group(2))]
    return parts[: MAX_DEPTH + 1]


def _lists(node: Any) -> Any:
    """Dicts whose keys are all "" or consecutive integers from 0 become lists."""
    if not isinstance(node, dict):
        return node
    converted = {k: _lists(v) for k, v in node.items()}
    if converted and all(isinstance(k, int) for k in converted):
        if sorted(converted) == list(range(len(converted))):
            return [converted[i] for i in range(len(converted))]
        return {str(k): v for k, v in converted.items()}
    return converted


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest `a[b][]=1`-style pairs. A later scalar for the same name wins, as in PHP."""
    root: dict[Any, Any] = {}
    for name, value in pairs:
        parts = _path(name)
        node: Any = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            key: Any = part
            if part == "" and depth > 0:
                key = sum(1 for k in node if isinstance(k, int))
                while key in node:
                    key += 1
            elif part.isascii() and part.isdigit() and depth > 0 and len(part) < 7:
                key = int(part)
            if last:
                node[key] = value
            else:
                child = node.get(key)
                if not isinstance(child, dict):
                    child = {}
                    node[key] = child
                node = child
    return _lists(root)


def find_nul(value: Any, name: str) -> str | None:
    """The bracketed name of the first string holding a NUL byte (no database stores one), or None."""
    if isinstance(value, str):
        return name if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return name
        found = find_nul(item, f"{name}[{key}]" if name else str(key))
        if found:
            return found
    return None


def decode_entity(value: Any) -> Any:
    """A JSON-or-form value: a string that looks like JSON is decoded, anything else is kept."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


def boolean(value: Any, name: str, default: bool | None = None) -> bool | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
    raise ParameterError(name)


def string_list(value: Any, name: str) -> list[str]:
    """`filter[ids][]` as a list of strings: a list, a dict of indexes, a JSON array or one scalar."""
    value = decode_entity(value)
    if value is None:
        return []
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        value = [value]
    out = []
    for item in value:
        if isinstance(item, dict | list):
            raise ParameterError(name)
        out.append(str(item))
    return out


def int_list(value: Any, name: str) -> list[int]:
    out = []
    for item in string_list(value, name):
        try:
            number = int(item)
        except ValueError:
            raise ParameterError(name) from None
        if not -(2**63) < number < 2**63:
            raise ParameterError(name)
        out.append(number)
    return out
