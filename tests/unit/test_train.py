from __future__ import annotations

import errno

import numpy as np
import pandas as pd
import pytest
import torch

from emocore.data.dataset import VolumeSource
from emocore.errors import CheckpointError, ConfigError
from emocore.training.train import (
    TrainConfig,
    load_checkpoint,
    predict_proba,
    save_checkpoint,
    train_model,
)
from tests.conftest import planted_volumes

CFG = TrainConfig(epochs=2, batch_size=16, widths=(4, 8, 8), hidden=16, device="cpu", seed=1)


def _sources(signal: float):
    cache, meta = planted_volumes(60, 3, signal=signal)
    train, test = meta[meta.run != 4], meta[meta.run == 4]
    return VolumeSource(cache, train), VolumeSource(cache, test)


def _accuracy(model, source) -> float:
    probs = predict_proba(model, source, device="cpu")
    return float((probs.argmax(1) == source.y.numpy()).mean())


def test_two_epochs_beat_chance_on_a_planted_signal_and_not_without_it():
    cfg = TrainConfig(**{**CFG.to_dict(), "batch_size": 8, "widths": (4, 8, 8)})
    train, test = _sources(1.0)
    res = train_model(train, test, cfg, n_classes=3)
    assert _accuracy(res.model, test) > 0.75
    assert [h["epoch"] for h in res.history] == [1, 2] and res.history[-1]["val_acc"] is not None
    train0, test0 = _sources(0.0)
    res0 = train_model(train0, test0, cfg, n_classes=3)
    assert _accuracy(res0.model, test0) < 0.55  # chance is 1/3


def test_same_seed_same_cpu_same_weights():
    train, test = _sources(1.0)
    a = train_model(train, None, CFG, n_classes=3)
    b = train_model(train, None, CFG, n_classes=3)
    for (ka, va), (_, vb) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(va, vb), ka


def test_progress_and_epoch_callbacks():
    train, _ = _sources(1.0)
    fractions, records = [], []
    train_model(
        train,
        None,
        CFG,
        n_classes=3,
        progress=lambda f, m: fractions.append(f),
        on_epoch=records.append,
    )
    assert fractions == [0.5, 1.0]
    assert records[0]["train_loss"] > 0 and records[0]["val_loss"] is None


def test_resume_continues_a_killed_run(tmp_path):
    train, _ = _sources(1.0)
    ckpt = tmp_path / "m.pt"
    full = train_model(
        train, None, TrainConfig(**{**CFG.to_dict(), "epochs": 3, "widths": (4, 8, 8)}), n_classes=3
    )
    short = TrainConfig(**{**CFG.to_dict(), "epochs": 2, "widths": (4, 8, 8)})
    train_model(train, None, short, n_classes=3, checkpoint=ckpt)
    # "killed" after epoch 2 of 3: resume with the 3-epoch config must match an uninterrupted run
    three = TrainConfig(**{**CFG.to_dict(), "epochs": 3, "widths": (4, 8, 8)})
    state = torch.load(ckpt, weights_only=True)
    state["config"] = three.to_dict()
    torch.save(state, ckpt)
    resumed = train_model(train, None, three, n_classes=3, checkpoint=ckpt, resume=True)
    assert len(resumed.history) == 3
    for (k, va), (_, vb) in zip(
        full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert torch.allclose(va.float(), vb.float(), atol=1e-5), k


def test_checkpoint_round_trip_and_mismatch_errors(tmp_path):
    train, test = _sources(1.0)
    res = train_model(train, None, CFG, n_classes=3)
    path = save_checkpoint(
        tmp_path / "m.pt",
        res.model,
        config=CFG,
        classes_n=3,
        epoch=2,
        extra={"classes": ["A", "B", "C"]},
    )
    model, state = load_checkpoint(path, grid_shape=train.shape, classes=["A", "B", "C"])
    assert np.allclose(
        predict_proba(model, test, device="cpu"),
        predict_proba(res.model, test, device="cpu"),
        atol=1e-6,
    )
    with pytest.raises(
        CheckpointError, match=r"trained on a \(7, 8, 9\) grid but the data are \(22, 29, 8\)"
    ):
        load_checkpoint(path, grid_shape=(22, 29, 8))
    with pytest.raises(CheckpointError, match="predicts"):
        load_checkpoint(path, classes=["A", "B"])


def test_corrupt_or_foreign_checkpoints_are_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x04garbage")
    with pytest.raises(CheckpointError, match="not a readable emocore checkpoint"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not an emocore checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    train, _ = _sources(1.0)
    res = train_model(train, None, CFG, n_classes=3)
    path = save_checkpoint(tmp_path / "m.pt", res.model, config=CFG, classes_n=3, epoch=1)
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match="disk is full; the previous checkpoint is intact"):
        save_checkpoint(path, res.model, config=CFG, classes_n=3, epoch=2)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_config_errors_name_the_option():
    with pytest.raises(ConfigError, match="epochs must be at least 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="lr must be in"):
        TrainConfig(lr=3.0)
    with pytest.raises(ConfigError, match="'epoch_selection' must be one of .*'best' was provided"):
        TrainConfig(epoch_selection="best")


def test_epoch_selection_round_trips_and_old_configs_load_as_fixed():
    inner = TrainConfig(epochs=30, epoch_selection="inner")
    assert TrainConfig.from_dict(inner.to_dict()) == inner
    old = TrainConfig().to_dict()
    del old["epoch_selection"]  # a config saved before the option existed
    loaded = TrainConfig.from_dict(old)
    assert loaded.epoch_selection == "fixed" and loaded == TrainConfig()


def test_recorded_configs_with_unknown_keys_are_refused_naming_them():
    """A key this version lacks (a newer emocore's, or a typo made by hand) is not dropped
    silently: the run would be re-created with other settings than it recorded."""
    from emocore.workflows.study import StudyConfig

    typo = {**TrainConfig().to_dict(), "learning_rate": 0.1}
    with pytest.raises(ConfigError, match="a training config holds keys .*: learning_rate"):
        TrainConfig.from_dict(typo)
    study = StudyConfig().to_dict()
    assert StudyConfig.from_dict(study) == StudyConfig()
    with pytest.raises(ConfigError, match="a study's config holds keys .*: n_fold, zz"):
        StudyConfig.from_dict({**study, "zz": 1, "n_fold": 3})
    with pytest.raises(ConfigError, match="a training config holds keys .*: dropuot"):
        StudyConfig.from_dict({**study, "train": {**study["train"], "dropuot": 0.2}})


class _Oracle(torch.nn.Module):
    """Predicts the class written in each volume's first voxel (a known prediction per volume)."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pred = x.flatten(1)[:, 0].round().long()
        return torch.nn.functional.one_hot(pred, self.n_classes).float()


def test_val_balanced_acc_matches_sklearn_on_a_known_case():
    from sklearn.metrics import balanced_accuracy_score

    from emocore.training.train import _run_epoch
    from tests.conftest import ArrayCache

    # imbalanced truth, class 3 only ever predicted (never true), 11 volumes over 3 batches
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2])
    pred = np.array([0, 0, 0, 1, 3, 0, 1, 0, 2, 3, 3])
    x = np.zeros((len(y), 3, 4, 5), np.float16)
    x[:, 0, 0, 0] = pred
    meta = pd.DataFrame({"subject": "01", "row": np.arange(len(y)), "y": y})
    source = VolumeSource(ArrayCache({"01": x}), meta)
    model = _Oracle(4)
    cfg = TrainConfig(batch_size=4, device="cpu", widths=(4, 8, 8), hidden=16)
    loss_fn = torch.nn.CrossEntropyLoss()
    _, acc, balanced = _run_epoch(
        model, model, source, cfg, torch.device("cpu"), loss_fn, n_classes=4
    )
    assert acc == pytest.approx((y == pred).mean())
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        want = balanced_accuracy_score(y, pred)
    assert balanced == pytest.approx(want)  # (5/6 + 1/2 + 1/3) / 3, not the plain 7/11
    assert balanced != pytest.approx(acc)


def test_epoch_records_carry_val_balanced_acc():
    train, test = _sources(1.0)
    res = train_model(train, test, CFG, n_classes=3)
    for record in res.history:
        assert 0.0 <= record["val_balanced_acc"] <= 1.0 and record["val_acc"] is not None
    alone = train_model(train, None, CFG, n_classes=3)
    assert alone.history[0]["val_balanced_acc"] is None


def test_the_saliency_method_is_chosen_recorded_and_read_back():
    """SmoothGrad unless --saliency-method says otherwise; a study recorded before the option
    made integrated gradients and reads back as such (a resume or re-run makes the same maps)."""
    from emocore.cli import build_parser
    from emocore.cli.models import study_config_from_args
    from emocore.workflows.study import StudyConfig

    args = build_parser().parse_args(["study", "--saliency-method", "integrated-gradients"])
    assert study_config_from_args(args, ("loso",)).saliency_method == "integrated-gradients"
    default = build_parser().parse_args(["study"])
    assert study_config_from_args(default, ("loso",)).saliency_method == "smoothgrad"
    recorded = StudyConfig().to_dict()
    assert StudyConfig.from_dict(recorded).saliency_method == "smoothgrad"
    del recorded["saliency_method"]  # a study.json written before the option
    assert StudyConfig.from_dict(recorded).saliency_method == "integrated-gradients"
    with pytest.raises(ConfigError, match="'saliency_method' must be one of"):
        StudyConfig(saliency_method="ig")
