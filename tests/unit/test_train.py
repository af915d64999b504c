from __future__ import annotations

import errno

import numpy as np
import pytest
import torch

from emocore.data.dataset import VolumeSource
from emocore.errors import CheckpointError, ConfigError
from emocore.train import TrainConfig, load_checkpoint, predict_proba, save_checkpoint, train_model
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
