"""synthetic cohort -> cache -> study -> registry -> evaluate/predict, through the CLI a user types."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from emocore.cli import main
from emocore.constants import EMOTIONS
from emocore.errors import EXIT_CODES
from emocore.runs.registry import Registry

SUMMARY_KEYS = {
    "design",
    "model",
    "split",
    "leaky",
    "n_volumes",
    "accuracy",
    "balanced_accuracy",
    "chance_balanced_accuracy",
    "chance_balanced_accuracy_theoretical",
    "p_value",
    "ci95",
    "per_class_accuracy",
}


def _json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _quiet_json(argv: list[str]) -> dict:
    """``emocore <argv> --json`` in this process, its printed JSON (for module fixtures, which
    cannot use capsys)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0, argv
    return json.loads(printed.getvalue())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """A synthetic cohort, its cache and a study of it, through the CLI: what every test of this
    module starts from, made once (any test can run alone)."""
    home = tmp_path_factory.mktemp("home")
    cohort, cache, reg = home / "cohort", home / "cache", home / "registry"
    synth = ["synth", "--out", str(cohort), "--subjects", "3", "--grid-mm", "12", "--json"]
    prepare = [
        "prepare",
        "--bids",
        str(cohort),
        "--annotations",
        str(cohort / "annotations" / "raw"),
    ]
    study = ["study", "--cache", str(cache), "--registry", str(reg), "--epochs", "1"]
    study += ["--n-folds", "2", "--permutations", "100", "--saliency-volumes", "4", "--json"]
    out = {
        "home": home,
        "synth": _quiet_json(synth),
        "prepare": _quiet_json([*prepare, "--cache", str(cache), "--json"]),
        "study": _quiet_json(study),
    }
    run_id = out["study"]["run_id"]
    evaluate = ["evaluate", "--run", run_id, "--registry", str(reg), "--permutations", "50"]
    out["evaluate"] = _quiet_json([*evaluate, "--json"])
    return out


@pytest.fixture(scope="module")
def home(built: dict) -> Path:
    return built["home"]


def test_synth_prepare_study_evaluate_predict(built, capsys):
    home = built["home"]
    cohort, cache, reg = home / "cohort", home / "cache", home / "registry"
    out = built["synth"]
    assert Path(out["out"]) == cohort
    prep = built["prepare"]
    assert prep["subjects"] == ["01", "02", "03"] and prep["grid"] == [13, 18, 5]
    assert (
        set(prep["label_counts"]) == {"NONE", *EMOTIONS}
        and sum(prep["label_counts"].values()) == 3599
    )

    study = built["study"]
    results = study["results"]
    # every saliency map carries its sanity checks, under the keys outside checks read
    for design, models in study["saliency_checks"].items():
        for model, maps in models.items():
            assert set(maps) == set(EMOTIONS), (design, model)
            for record in maps.values():
                assert {"completeness_delta", "randomisation_rank_correlation"} <= set(record)
                assert record["method"] == "smoothgrad" and record["ig_steps"] is None
                assert (
                    0 <= record["auc_input_only"] <= 1 and len(record["auc_difference_ci95"]) == 2
                )
                assert -1 <= record["randomisation_rank_correlation"] <= 1
                assert 0 <= record["auc"] <= 1 and 0 <= record["auc_randomised"] <= 1
    # and what each outer fold used, fixed here
    assert {v["how"] for f in study["tuning"].values() for v in f["cnn"].values()} == {"fixed"}
    # GPU memory is reported per design; there is none on a CPU run
    assert study["peak_gpu_memory_gib"] == dict.fromkeys(
        ("single-subject", "cross-subject", "loso")
    )
    assert {(r["design"], r["model"]) for r in results} == {
        (d, m) for d in ("single-subject", "cross-subject", "loso") for m in ("cnn", "linear")
    }
    for r in results:
        assert SUMMARY_KEYS <= set(r)
        assert r["leaky"] is False
        assert r["split"] == (
            "leave-one-subject-out" if r["design"] == "loso" else "run-wise 2-fold"
        )
        assert (
            0.1 < r["chance_balanced_accuracy"] < 0.3
            and r["chance_balanced_accuracy_theoretical"] == 0.2
        )
    bundle = Path(study["bundle"])
    for name in (
        "study.json",
        "metrics.json",
        "predictions.tsv",
        "baseline.tsv",
        "curves.tsv",
        "embeddings.tsv",
    ):
        assert (bundle / name).is_file(), name
    assert sorted(p.stem for p in (bundle / "models" / "loso").glob("*.pt")) == [
        "sub-01",
        "sub-02",
        "sub-03",
    ]
    assert (bundle / "saliency" / "loso" / "sub-03" / "sub-03_desc-love_saliency.nii.gz").is_file()
    assert (bundle / "saliency" / "cross-subject" / "desc-love_saliency.nii.gz").is_file()
    assert not (bundle / "work").exists()
    registry = Registry(reg)
    run = registry.get_run(study["run_id"])
    assert run.status == "completed" and run.data_hash and run.config["train"]["epochs"] == 1
    assert registry.disk_usage(run.id)["checkpoint"] > 0
    assert len(registry.curves(run.id)) > 0

    runs = _json(capsys, ["runs", "--registry", str(reg), "--json"])
    assert sorted((r["kind"], r["id"] == run.id) for r in runs["runs"]) == [
        ("evaluate", False),
        ("study", True),
    ]

    ev = built["evaluate"]  # `emocore evaluate --run <the study>`
    assert set(ev["designs"]) == {"single-subject", "cross-subject", "loso"}
    loso = ev["designs"]["loso"]
    assert loso["summary"]["split"] == "leave-one-subject-out"
    assert any(
        m["emotion"] == "LOVE" and m["sentence"].startswith("LOVE volumes of sub-")
        for m in loso["misclassification"]
    )

    pred = _json(
        capsys,
        [
            "predict",
            "--run",
            run.id,
            "--model",
            "loso/sub-02",
            "--subject",
            "02",
            "--cache",
            str(cache),
            "--registry",
            str(reg),
            "--permutations",
            "50",
            "--json",
        ],
    )
    assert pred["in_sample"] is False and pred["n_volumes"] > 100
    assert pred["engine"]["batchnorm_folded"] and pred["engine"]["device"] == "cpu"
    stored = bundle / "inference" / "loso" / "sub-02" / "sub-02.tsv"
    assert stored.is_file()
    insample = _json(
        capsys,
        [
            "predict",
            "--run",
            run.id,
            "--model",
            "loso/sub-02",
            "--subject",
            "01",
            "--cache",
            str(cache),
            "--registry",
            str(reg),
            "--permutations",
            "50",
            "--json",
        ],
    )
    assert insample["in_sample"] is True


#: What every saliency map's JSON sidecar says (see emocore.workflows.study_saliency.design_saliency).
SIDECAR_KEYS = {
    "Description",
    "Emotion",
    "Design",
    "Model",
    "Checkpoint",
    "TrainedOn",
    "HeldOut",
    "ExplainedSubjects",
    "NumberOfVolumes",
    "Method",
    "Samples",
    "NoiseLevel",
    "Target",
    "Units",
    "Run",
    "Cache",
}


def test_study_outputs_are_bids_derivatives(home):
    """The study of the test above: run folder and saliency maps are BIDS derivatives that
    nilearn loads as they are, each map with a sidecar saying what made it and what it holds."""
    from nilearn.image import load_img

    import emocore
    from emocore.data.derivatives import saliency_map_path, sidecar_path

    registry = Registry(home / "registry")
    studies = registry.list_runs(kind="study")
    assert len(studies) == 1  # the study of the fixture `built`
    run_id = studies["id"].iloc[0]
    bundle = registry.run_dir(run_id)
    cache_uri = (home / "cache").resolve().as_uri()

    description = json.loads((bundle / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["BIDSVersion"] == "1.9.0"
    assert description["GeneratedBy"][0] == {
        "Name": "emocore",
        "Version": emocore.__version__,
        "Description": description["GeneratedBy"][0]["Description"],
    }
    assert description["SourceDatasets"] == [{"URL": cache_uri}]
    # the fixture's evaluate run read the study's folder, and says so
    (evaluated,) = registry.list_runs(kind="evaluate")["id"]
    ev_description = json.loads(
        (registry.run_dir(evaluated) / "dataset_description.json").read_text()
    )
    assert ev_description["SourceDatasets"] == [{"URL": bundle.resolve().as_uri()}]

    study = json.loads((bundle / "study.json").read_text())
    grid = tuple(study["cache"]["grid"])
    found = set()
    for design, models in study["saliency"].items():
        folder = bundle / "saliency" / design
        assert json.loads((folder / "dataset_description.json").read_text())["DatasetType"] == (
            "derivative"
        )
        for model, maps in models.items():
            assert set(maps) == set(EMOTIONS)
            for emotion, entry in maps.items():
                path = saliency_map_path(folder, model, emotion, entry)
                assert path == folder / entry["file"], (design, model, emotion)
                expected = f"desc-{emotion.lower()}_saliency.nii.gz"
                assert path.name == (expected if model == "all" else f"{model}_{expected}")
                img = load_img(path)
                assert img.shape == grid and float(img.get_fdata().min()) >= 0
                sidecar = json.loads(sidecar_path(path).read_text())
                assert SIDECAR_KEYS <= set(sidecar), SIDECAR_KEYS - set(sidecar)
                assert (sidecar["Emotion"], sidecar["Design"], sidecar["Model"]) == (
                    emotion,
                    design,
                    model,
                )
                assert sidecar["Method"] == "smoothgrad" and sidecar["Samples"] > 0
                assert "logit" in sidecar["Units"] and sidecar["NumberOfVolumes"] > 0
                assert sidecar["Run"] == run_id and sidecar["Cache"]["URL"] == cache_uri
                assert sidecar["Cache"]["Key"] == study["cache"]["key"]
                assert (bundle / sidecar["Checkpoint"]).is_file()
                assert sidecar["HeldOut"] == (model if design == "loso" else None)
                assert sidecar["SanityChecks"]["method"] == sidecar["Method"]
                assert {w["Check"] for w in sidecar["SanityChecksInWords"]} >= {
                    "model randomisation",
                    "planted pattern",
                }
                found.add(path)
                # the linear decoder's activation pattern beside it, signed, on the same grid
                pattern = folder / entry["linear_pattern"]["file"]
                assert pattern.name == path.name.replace("_saliency", "_linearpattern")
                assert load_img(pattern).shape == grid
                assert json.loads(sidecar_path(pattern).read_text())["Model"] == model
                assert -1 <= entry["linear_pattern"]["correlation_with_saliency"] <= 1
                assert -1 <= entry["linear_pattern"]["correlation_with_randomised_saliency"] <= 1
                found.add(pattern)
    # every map on disk is one study.json lists: no file under an old or unknown name
    assert set((bundle / "saliency").rglob("*.nii.gz")) == found
    assert len(found) == 2 * (3 * 5 + 5 + 3 * 5)  # single-subject, cross-subject, loso


def test_cli_errors_are_one_clear_line(home, capsys):
    assert (
        main(["runs", "--registry", str(home / "registry"), "--show", "nope"])
        == EXIT_CODES["registry"]
    )
    err = capsys.readouterr().err
    assert "no run 'nope'" in err and "Traceback" not in err
    assert (
        main(["study", "--cache", str(home / "missing"), "--registry", str(home / "registry")])
        == EXIT_CODES["data"]
    )
    assert "emocore prepare" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--cache",
                str(home / "cache"),
                "--registry",
                str(home / "registry"),
                "--subject",
                "09",
            ]
        )
        == EXIT_CODES["config"]
    )
    assert "09" in capsys.readouterr().err


def test_resume_finishes_an_interrupted_run(home, capsys, monkeypatch):
    import emocore.training.designs as study_mod

    reg, cache = home / "registry", home / "cache"
    calls = {"n": 0}
    original = study_mod.train_model

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during the second fold
        return original(*args, **kwargs)

    monkeypatch.setattr(study_mod, "train_model", flaky)
    argv = [
        "train",
        "--cache",
        str(cache),
        "--registry",
        str(reg),
        "--subject",
        "01",
        "--epochs",
        "1",
        "--n-folds",
        "2",
        "--permutations",
        "20",
        "--no-baseline",
        "--no-saliency",
        "--json",
    ]
    assert main(argv) == 130
    capsys.readouterr()
    registry = Registry(reg)
    run = registry.list_runs(kind="train").iloc[0]
    assert run.status == "cancelled"
    monkeypatch.setattr(study_mod, "train_model", original)
    out = _json(
        capsys,
        ["train", "--resume", run.id, "--cache", str(cache), "--registry", str(reg), "--json"],
    )
    assert out["run_id"] == run.id and registry.get_run(run.id).status == "completed"


def test_torchrun_two_processes_record_one_run(home):
    """`torchrun --nproc_per_node 2 -m emocore.cli train ...`: DDP over gloo, rank 0 records."""
    import os
    import subprocess
    import sys

    reg = home / "registry-ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "emocore.cli",
        "train",
        "--design",
        "cross-subject",
        "--cache",
        str(home / "cache"),
        "--registry",
        str(reg),
        "--epochs",
        "1",
        "--n-folds",
        "2",
        "--permutations",
        "20",
        "--no-baseline",
        "--no-saliency",
        "--json",
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    runs = Registry(reg).list_runs()
    assert list(runs.id) == [out["run_id"]] and runs.status.iloc[0] == "completed"
    assert out["results"][0]["design"] == "cross-subject"
    assert (Path(out["bundle"]) / "models" / "cross-subject" / "all.pt").is_file()


def test_loso_folds_as_separate_jobs_evaluate_like_one_run(home, capsys):
    """`train --fold` per job, then `evaluate --run A --run B`: the same numbers as one LOSO run."""
    reg, cache = home / "registry-folds", home / "cache"
    common = ["--design", "loso", "--cache", str(cache), "--registry", str(reg), "--epochs", "1"]
    common += ["--permutations", "50", "--no-saliency", "--no-baseline", "--json"]
    whole = _json(capsys, ["train", *common])
    first = _json(capsys, ["train", *common, "--fold", "sub-01"])
    rest = _json(capsys, ["train", *common, "--fold", "sub-02", "--fold", "sub-03"])
    assert sorted(p.stem for p in (Path(first["bundle"]) / "models" / "loso").glob("*.pt")) == [
        "sub-01"
    ]
    assert first["results"][0]["n_volumes"] < whole["results"][0]["n_volumes"]

    evaluate = ["evaluate", "--registry", str(reg), "--permutations", "50", "--json"]
    merged = _json(capsys, [*evaluate, "--run", first["run_id"], "--run", rest["run_id"]])
    alone = _json(capsys, [*evaluate, "--run", whole["run_id"]])
    m, a = merged["designs"]["loso"], alone["designs"]["loso"]
    assert m["folds"] == a["folds"] == ["sub-01", "sub-02", "sub-03"]
    assert m["summary"]["n_volumes"] == a["summary"]["n_volumes"]
    # same seed, same data, same folds: the pooled fold jobs reproduce the single run
    assert m["summary"]["balanced_accuracy"] == pytest.approx(a["summary"]["balanced_accuracy"])
    assert merged["source_runs"] == [first["run_id"], rest["run_id"]]

    # a fold passed twice, or a run set up differently, is refused with the reason
    assert (
        main([*evaluate, "--run", first["run_id"], "--run", whole["run_id"]])
        == EXIT_CODES["config"]
    )
    assert "fold sub-01 of loso/loso is in run" in capsys.readouterr().err
    other = _json(capsys, ["train", *common, "--fold", "sub-02", "--lr", "0.01"])
    assert (
        main([*evaluate, "--run", first["run_id"], "--run", other["run_id"]])
        == EXIT_CODES["config"]
    )
    assert "configured differently" in capsys.readouterr().err
    assert main(["train", *common, "--fold", "sub-09"]) == EXIT_CODES["config"]
    assert "no fold named sub-09 in the loso design" in capsys.readouterr().err


def test_long_commands_log_progress_lines_when_not_on_a_terminal(home, capsys):
    """A Slurm log or `emocore ... > log` gets one plain progress line per step, not silence."""
    cohort = home / "progress-cohort"
    assert main(["synth", "--out", str(cohort), "--subjects", "1", "--grid-mm", "12"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("synth ")]
    assert len(lines) >= 2 and lines[-1].startswith("synth 100.0% ")
