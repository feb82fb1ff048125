"""What every bad-input test checks: one PoseshiftError line, or ``error: ...`` and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from poseshift.cli import app


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    """The message, after checking it is one line with no traceback in it."""
    message = str(excinfo.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def cli_refuses(args: list[str], names: Path | str) -> str:
    """Run the CLI: it must exit 2 with a single ``error:`` line that names ``names``."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert str(names) in lines[0]
    return lines[0]
