"""Where each capability's CLI commands are plugged into `platformdb`.

Each module listed here defines `register(app: typer.Typer) -> None` that adds its commands
(or a sub-app). Keeping the list here keeps cli.py small and lets capabilities evolve apart.
"""

from __future__ import annotations

import importlib

import typer

MODULES: list[str] = [
    "platformdb.demo",
    "platformdb.worker",
    "platformdb.aio.worker",
    "platformdb.lint",
    "platformdb.verify",
    "platformdb.security_doc",
    "platformdb.whatsapp_cloud.cli",
    "platformdb.docs",
    "platformdb.maintain",
    "platformdb.dashboard.cli",
    "platformdb.doctor",
    "platformdb.sdk.flags_cli",
    "platformdb.citus",
]


def register(app: typer.Typer) -> None:
    for name in MODULES:
        importlib.import_module(name).register(app)
