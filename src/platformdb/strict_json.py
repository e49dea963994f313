"""JSON as RFC 8259 and jsonb read it, for bodies and files from outside.

Python's json module reads NaN, Infinity and -Infinity, which are not JSON and which jsonb
refuses (a later store would fail), and raises RecursionError on a document nested deeper
than it recurses. `loads` turns all of those, and bytes that are not UTF-8, into ValueError,
so that a caller answers them as bad input (a 400), never as a server error.
"""

from __future__ import annotations

import json
from typing import Any


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def loads(data: str | bytes) -> Any:
    """The document in `data`; ValueError when it is not strict JSON (see the module doc)."""
    try:
        return json.loads(data, parse_constant=_not_json)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    # UnicodeDecodeError and json.JSONDecodeError are ValueErrors already
