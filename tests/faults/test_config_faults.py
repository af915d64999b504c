"""Bad options are refused before any run is recorded (issue 10, item 7)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.errors import EXIT_CODES, ConfigError
from emocore.runs.registry import Registry
from emocore.workflows.study import StudyConfig


@pytest.mark.parametrize(
    ("n_folds", "message"), [(1, "1 was given"), (0, "0 was given"), (-3, "-3 was given")]
)
def test_study_config_refuses_too_few_folds(n_folds: int, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"'n_folds' must be >= 2.*{message}.*--n-folds 2"):
        StudyConfig(n_folds=n_folds)


def test_study_config_refuses_an_unknown_split() -> None:
    with pytest.raises(ConfigError, match=r"'split' must be one of .*'lorro'.*did you mean 'loro'"):
        StudyConfig(split="lorro")


BAD_OPTIONS = [
    (["--n-folds", "1"], r"'n_folds' must be >= 2 .*; 1 was given\. Pass --n-folds 2 or more"),
    (["--n-folds", "9"], r"n_folds must be between 2 and the number of runs \(8\); 9 was given"),
    (["--epochs", "0"], r"epochs must be at least 1; 0 was given"),
    (["--batch-size", "0"], r"batch_size must be at least 1; 0 was given"),
    (["--lr", "0"], r"lr must be in \(0, 1\); 0.0 was given"),
    (["--permutations", "0"], r"--permutations \(n_permutations\) must be at least 1"),
    (["--subject", "99"], r"subject\(s\) 99 not in the cache"),
    (["--design", "loso", "--fold", "sub-77"], r"no fold named sub-77 in the loso design"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS, ids=[o[0][-2] for o in BAD_OPTIONS])
def test_train_with_a_bad_option_creates_no_run(
    tiny_cache, tmp_path: Path, capsys, options: list[str], message: str
) -> None:
    registry = tmp_path / "registry"
    argv = ["train", "--cache", str(tiny_cache.path), "--registry", str(registry)]
    argv += ["--epochs", "1", "--device", "cpu", "--no-baseline", "--no-saliency", *options]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == EXIT_CODES["config"], err
    assert err.startswith("emocore train: error: ")
    assert re.search(message, err), err
    assert Registry(registry).list_runs().empty
    assert list((registry / "runs").iterdir()) == []


def test_a_queued_run_with_a_bad_split_is_failed_not_left_queued(
    tiny_cache, tmp_path: Path
) -> None:
    from emocore.workflows.study import run_study
    from tests.faults.conftest import tiny_study

    registry = Registry(tmp_path / "registry")
    queued = registry.create_run(kind="train", design="single-subject")
    with pytest.raises(ConfigError, match=r"n_folds must be between 2 and the number of runs"):
        run_study(tiny_cache, registry, tiny_study(n_folds=9), kind="train", run_id=queued.id)
    record = registry.get_run(queued.id)
    assert record.status == "failed" and "9 was given" in record.error
