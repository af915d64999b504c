"""The command's conventions: distinct exit codes, -q and -v after the command, option errors
that suggest the closest value, and the job entry point that is not the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from emocore.cli import build_parser, main
from emocore.errors import (
    EXIT_CODES,
    CacheError,
    CheckpointError,
    ConfigError,
    DataError,
    EmocoreError,
    RegistryError,
    check_choice,
    exit_code,
)
from emocore.runs.registry import Registry


def test_each_kind_of_error_has_its_own_exit_code() -> None:
    codes = {
        ConfigError("x"): EXIT_CODES["config"],
        DataError("x"): EXIT_CODES["data"],
        CacheError("x"): EXIT_CODES["data"],
        CheckpointError("x"): EXIT_CODES["data"],
        EmocoreError("x"): EXIT_CODES["data"],
        OSError("disk"): EXIT_CODES["data"],
        RegistryError("x"): EXIT_CODES["registry"],
        KeyboardInterrupt(): EXIT_CODES["interrupted"],
    }
    for exc, code in codes.items():
        assert exit_code(exc) == code, exc
    # none of them is argparse's usage code, and they differ from each other
    kinds = ("config", "data", "registry", "interrupted")
    assert len({EXIT_CODES[k] for k in kinds} | {EXIT_CODES["usage"]}) == 5
    assert "exit codes:" in build_parser().format_help()


def test_cli_exits_with_the_code_of_what_went_wrong(tmp_path: Path, capsys) -> None:
    registry = str(tmp_path / "registry")
    Registry(registry)
    assert main(["runs", "--registry", registry, "--show", "nope"]) == EXIT_CODES["registry"]
    assert "no run 'nope'" in capsys.readouterr().err
    missing = ["study", "--cache", str(tmp_path / "missing"), "--registry", registry]
    assert main(missing) == EXIT_CODES["data"]
    assert main(["bench", "--grid", "1,2", "--no-data"]) == EXIT_CODES["config"]
    with pytest.raises(SystemExit) as usage:
        main(["runs", "--no-such-option"])
    assert usage.value.code == EXIT_CODES["usage"]


def test_quiet_and_verbose_are_accepted_after_the_command() -> None:
    parser = build_parser()
    args = parser.parse_args(["runs", "-q", "-v"])
    assert args.quiet and args.verbose
    args = parser.parse_args(["-q", "runs"])  # before the command, not undone by it
    assert args.quiet and not args.verbose
    args = parser.parse_args(["runs"])
    assert not args.quiet and not args.verbose


def test_quiet_silences_progress_but_not_the_result(tmp_path: Path, capsys) -> None:
    argv = ["synth", "--subjects", "1", "--grid-mm", "12"]
    assert main([*argv, "--out", str(tmp_path / "a"), "-q"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == "" and quiet.out.strip()
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert "synth 100.0%" in capsys.readouterr().err  # progress lines when not quiet


def test_check_choice_suggests_the_closest_value() -> None:
    expected = r"'design' must be one of 'loso', 'single-subject'; 'lsoo' was provided; did you "
    with pytest.raises(ConfigError, match=expected + r"mean 'loso'\?"):
        check_choice("design", "lsoo", ("loso", "single-subject"))
    with pytest.raises(ConfigError, match=r"'x' was provided$"):
        check_choice("kind", "x", ("train", "study"))
    check_choice("kind", None, ("train",), optional=True)
    with pytest.raises(RegistryError):
        check_choice("run", "b", ("a",), error=RegistryError)


def test_jobs_run_through_their_own_entry_point(tmp_path: Path) -> None:
    """A job process is `python -m emocore.workflows.jobs`, not the CLI; an unknown run is a registry
    error with its exit code, named on stderr (the job's log)."""
    from emocore.workflows.jobs import _job_command

    reg = Registry(tmp_path / "registry")
    command = _job_command("RUN", tmp_path / "cache", reg)
    assert command[1:3] == ["-m", "emocore.workflows.jobs"] and "emocore.cli" not in command
    argv = ["nope", "--cache", str(tmp_path), "--registry", str(reg.root)]
    done = subprocess.run(
        [sys.executable, "-m", "emocore.workflows.jobs", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_CODES["registry"], done.stderr
    assert "no run 'nope'" in done.stderr


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--grid-mm", "0.1"], "--grid-mm must be between 1.0 and 20.0 (mm); 0.1 was given"),
        (["--subjects", "0"], "--subjects must be an integer in 1..99; 0 was given"),
        (["--noise", "-1"], "--noise must be between 0 and 100; -1.0 was given"),
    ],
)
def test_synth_names_the_option_the_user_typed(tmp_path: Path, capsys, argv, said) -> None:
    assert main(["synth", "--out", str(tmp_path / "c"), *argv]) == EXIT_CODES["config"]
    err = capsys.readouterr().err
    assert said in err and "grid_mm" not in err and "n_subjects" not in err
    assert not (tmp_path / "c").exists()
