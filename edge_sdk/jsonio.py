"""One strict JSON reader for every document edge-sdk trusts (issue 26 section 3).

Manifests, signature envelopes, golden references and the other JSON that decides what a model is are
read by :func:`loads_strict`, which refuses what Python's ``json`` quietly accepts:

- **duplicate keys**: ``{"labels": [forged], ...original...}`` keeps the last value in Python and the first
  in most other readers, so a signed manifest with a forged key prepended verified here while an app read
  the forgery. Refused, naming the key.
- **nesting deeper than** :data:`MAX_DEPTH` (64): the C parser recurses, so a deep document ended in a raw
  ``RecursionError``. The depth is measured by a linear scan before parsing, so nothing recurses on it.

Errors are the caller's class (``ManifestError``, ``SignatureError``, ...) with one line naming the document.
"""

from __future__ import annotations

import json
import re
from typing import Any

from edge_sdk.errors import EdgeSdkError

#: The deepest nesting of objects/arrays accepted: edge-sdk's own documents stay under 10.
MAX_DEPTH = 64

# a JSON string (skipped whole: brackets inside it do not count) or one bracket
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``{``/``[`` in JSON ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif token in "]}":
            depth -= 1
    return deepest


def loads_strict(data: Any, what: str, error: type[EdgeSdkError], *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON ``data`` (str or UTF-8 bytes), refusing duplicate keys and nesting beyond ``max_depth``.

    ``what`` names the document in messages ("manifest model.json"); any problem raises ``error``.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(
                f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start}); expected a JSON document"
            ) from None
    depth = nesting_depth(data)
    if depth > max_depth:
        raise error(f"{what} nests {depth} levels deep; expected at most {max_depth} (a damaged or hostile file)")
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise error(
            f"{what} has the key {exc.key!r} more than once in one object; expected each key once "
            "(readers disagree on which value wins, so a duplicate is refused)"
        ) from None
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # belt and braces: the scan above should make this unreachable
        raise error(f"{what} nests too deeply to read; expected at most {max_depth} levels") from None
