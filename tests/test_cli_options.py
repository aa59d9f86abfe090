"""`--debug` and `--verbose`: options of every command, parsed by cyclopts' meta app, listed in
`--help`, read before or after the command, and never carried over to the next call."""

from __future__ import annotations

from pathlib import Path

import pytest

from cycles import cli
from cycles.cli import main


def test_help_lists_the_options_of_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["run", "--help"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "Every command" in out and "--debug" in out and "--verbose" in out
        assert "--no-debug" not in out


@pytest.mark.parametrize("argv", [["--debug", "run", "nope.yaml"], ["run", "nope.yaml", "--debug"]])
def test_debug_before_or_after_the_command_then_not_again(
    argv: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("radar: no such declaration file: nope.yaml\n")
    assert main(["run", "nope.yaml"]) == 2  # the next call has no --debug
    assert capsys.readouterr().err == "radar: no such declaration file: nope.yaml\n"


def test_verbose_is_this_calls_only(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["outcomes", "--verbose"]) == 0
    assert cli._FLAGS == {"debug": False, "verbose": True}
    assert main(["outcomes"]) == 0
    assert cli._FLAGS == {"debug": False, "verbose": False}


@pytest.mark.parametrize(
    ("argv", "code", "line"),
    [
        (["--bogus"], 2, 'radar: Unknown command "--bogus".'),
        (["run", "x.yaml", "--bogus"], 2, "radar: Unknown option: --bogus."),
        (["--verbose"], 0, None),  # no command: the help, as without the option
        (["--version"], 0, None),
    ],
)
def test_exit_codes_and_one_line(
    argv: list[str], code: int, line: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    out, err = capsys.readouterr()
    if line is None:
        assert out and not err
    else:
        assert err.count("\n") == 1 and err.startswith(line)
