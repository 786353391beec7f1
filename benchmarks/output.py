"""A benchmark's results as ``<out>/<stem>.json`` and ``.md``: the command that made them and
the machine in the JSON, the command as the Markdown's first line. One writer, so every
benchmark's files say the same things in the same places."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .machine import machine_info


def command_line(module: str, argv) -> str:
    """The command as typed: ``python -m <module> <args>``."""
    return f"python -m {module} " + " ".join(sys.argv[1:] if argv is None else argv)


def write_results(out: str | Path, stem: str, command: str, payload: dict, title: str, note: str, table: str) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({"command": command, **payload, "machine": machine_info()},
                                                 indent=1) + "\n")
    (out / f"{stem}.md").write_text(f"# {title}\n\nCommand: `{command}`; {note}\n\n" + table)
