"""`--json` output: one JSON document on stdout with a `version` and a `kind`
(see docs/json.md); logs and errors stay on stderr."""

from __future__ import annotations

import json
from typing import Any

import click

VERSION = 1


def emit(kind: str, payload: dict[str, Any]) -> None:
    click.echo(json.dumps({"version": VERSION, "kind": kind, **payload}, indent=2, default=str, ensure_ascii=False))
