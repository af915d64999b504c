"""The demo's progress (`emocore demo --train`) only goes forward and ends at 100 %: driven by
stand-ins that report what cohort, cache and study report, without training."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from emocore.progress import monotone, part
from emocore.workflows import demo


def study_reports(n_designs: int) -> list[tuple[float, str]]:
    """What ``run_study`` reports (its ``report(i, label)``, n designs + 1 equal shares): each
    design's training from 0 to all of its share, then its linear baseline at 97 % and its
    saliency maps at 99 % of that share, then the start of the last share (embeddings)."""
    n = n_designs + 1
    said = []
    for i in range(n_designs):
        said += [((i + f) / n, f"design {i}: training") for f in (0.0, 0.5, 1.0)]
        said += [((i + 0.97) / n, "linear baseline"), ((i + 0.99) / n, "saliency maps")]
    return [*said, (n_designs / n, "embeddings")]


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[float, str]]:
    """build_demo's cohort, cache and study replaced by stand-ins that only report progress."""

    def cohort(root, config, *, progress):
        for f in (0.0, 0.5, 1.0):
            progress(f, "writing people")

    def cache(cohort, annotations, out, *, options, subjects, progress):
        return SimpleNamespace(path=out)  # a reused cache: it reports nothing

    def study(cache, registry, config, *, progress):
        for fraction, message in study_reports(len(config.designs)):
            progress(fraction, message)
        return SimpleNamespace(folder=tmp_path / "registry" / "runs" / "20261129-204812-ab12")

    monkeypatch.setattr(demo, "generate_cohort", cohort)
    monkeypatch.setattr(demo, "prepare_cache", cache)
    monkeypatch.setattr(demo, "run_study", study)
    return []


def test_the_study_alone_would_step_back_and_stop_short() -> None:
    """What the demo showed: 66.7 % then 66.2 %, and 83.3 % at the end."""
    said: list[float] = []
    study = part(lambda f, m: said.append(round(100 * f, 1)), 0.5, 1.0)
    for fraction, message in study_reports(len(demo.demo_study_config().designs)):
        study(fraction, message)
    assert 66.7 in said and said[said.index(66.7) + 1] == 66.2 and said[-1] == 83.3


@pytest.mark.parametrize("train", [True, False])
def test_the_demo_only_goes_forward_and_ends_at_100(
    train: bool, shown: list[tuple[float, str]], tmp_path: Path
) -> None:
    demo.build_demo(tmp_path, train=train, progress=lambda f, m: shown.append((f, m)))
    fractions = [f for f, _ in shown]
    assert fractions == sorted(fractions), fractions
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions[-1] == 1.0 and shown[-1][1].startswith("the demo is ready")
    if train:  # every step of the study still says what it does
        assert any(m.endswith("linear baseline") for _, m in shown)


def test_monotone_keeps_the_highest_fraction_and_the_newest_message() -> None:
    said: list[tuple[float, str]] = []
    progress = monotone(lambda f, m: said.append((f, m)))
    assert progress is not None and monotone(None) is None
    for fraction, message in ((0.2, "a"), (0.5, "b"), (0.4, "c"), (1.3, "d"), (-1, "e")):
        progress(fraction, message)
    assert said == [(0.2, "a"), (0.5, "b"), (0.5, "c"), (1.0, "d"), (1.0, "e")]


def test_a_demo_built_with_other_options_is_refused_with_what_to_do(tmp_path):
    """A demo folder left by an earlier version (e.g. before the shared response, whose cohort
    reads as --shared 0) is not silently reused or replaced: the error names it and the fix."""
    from emocore.data.synthetic import OtherCohortError, SynthConfig, generate_cohort
    from emocore.workflows.demo import build_demo, demo_paths

    old = demo_paths(tmp_path)["cohort"]
    generate_cohort(old, SynthConfig(n_subjects=1, grid_mm=12.0, shared=0.0))
    before = sorted(p.relative_to(old) for p in old.rglob("*"))
    with pytest.raises(OtherCohortError) as caught:
        build_demo(tmp_path)
    assert str(old) in str(caught.value)
    assert f"delete the demo folder {tmp_path}" in str(caught.value)
    assert sorted(p.relative_to(old) for p in old.rglob("*")) == before  # nothing touched
    assert not demo_paths(tmp_path)["cache"].exists()
