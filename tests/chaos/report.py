"""Reports of the chaos scenarios and fuzz runs: one line on the terminal, one JSON file.

Full runs (`make chaos`) write `bench/results/chaos_<name>.json`; smoke runs (inside
`make test`) write `bench/results/chaos_<name>-smoke.json`, so a quick run never overwrites
the figures of a full one. The lines are printed in pytest's terminal summary.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"

LINES: dict[str, list[str]] = {"chaos": [], "fuzz": []}


def full() -> bool:
    """True in `make chaos` (PLATFORMDB_CHAOS=full): the scenarios at their full size."""
    return os.environ.get("PLATFORMDB_CHAOS") == "full"


def profile() -> str:
    return "full" if full() else "smoke"


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write(
    name: str, line: str, figures: dict[str, Any], section: str = "chaos", run_profile: str | None = None
) -> Path:
    """Record a scenario's one-line result and write its JSON report; returns the file."""
    prof = run_profile or profile()
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if prof in ("full", "deep") else f"-{prof}"
    path = RESULTS / f"{section}_{name}{suffix}.json"
    doc = {"bench": f"{section}_{name}", "profile": prof, "machine": machine(), "result": line, "figures": figures}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    LINES[section].append(f"[{prof}] {line}")
    print(line, flush=True)
    return path
