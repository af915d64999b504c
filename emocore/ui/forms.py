"""The Retrain form: every setting a retrain uses, its defaults those of the study it retrains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from emocore.runs.registry import DESIGNS
from emocore.workflows import jobs

if TYPE_CHECKING:
    from emocore.training.train import TrainConfig
    from emocore.workflows.study import StudyConfig

__all__ = ["retrain_form"]

_SPLITS = ["leave-one-run-out", "random"]
_DEVICES = ["auto", "cpu", "cuda"]
_COMPILE = ["auto", "on", "off"]


def _with(options: list[str], value: str) -> list[str]:
    """``options``, plus ``value`` when a recorded config used one the form does not list."""
    return options if value in options else [*options, value]


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def retrain_form(base: StudyConfig, subjects: Sequence[str], *, source: str) -> StudyConfig | None:
    """The form, every widget defaulting to ``base`` (see :func:`emocore.workflows.jobs.retrain_defaults`);
    the config to train once submitted (``base`` with what the user changed), else None.

    ``source`` says where the defaults come from, e.g. "run 2026...: study · ... · 10 people".
    """
    with st.form("retrain", enter_to_submit=False):
        st.markdown(f"Every setting below is used. The defaults are those of {source}.")
        v = {
            **_people_fields(base, subjects),
            **_split_fields(base),
            **_training_fields(base.train),
            **_analysis_fields(base),
        }
        _recorded_caption(base.train)
        start = st.form_submit_button("Start training", type="primary")
    if not start:
        return None
    return jobs.retrain_config(
        base,
        designs=v["designs"],
        subjects=v["subjects"],
        split=v["split"],
        n_folds=None if v["n_folds"] is None else int(v["n_folds"]),
        include_none=v["include_none"],
        epochs=int(v["epochs"]),
        lr=float(v["lr"]),
        batch_size=int(v["batch_size"]),
        dropout=float(v["dropout"]),
        class_weights=v["class_weights"],
        seed=int(v["seed"]),
        device=v["device"],
        compile=v["compile"],
        n_permutations=int(v["n_permutations"]),
        alpha=float(v["alpha"]),
        baseline=v["baseline"],
        saliency=v["saliency"],
        refit=v["refit"],
        folds=None,
    )


def _people_fields(base: StudyConfig, subjects: Sequence[str]) -> dict[str, Any]:
    """The designs and the people (those of ``base`` still in the cache), and a note naming
    the people of ``base`` the cache no longer holds."""
    people = list(subjects)
    chosen = [p for p in (base.subjects or people) if p in people]
    gone = [p for p in (base.subjects or ()) if p not in people]
    designs = st.multiselect("Designs", DESIGNS, default=list(base.designs))
    picked = st.multiselect("Subjects", people, default=chosen, format_func=lambda x: f"sub-{x}")
    if gone:
        st.caption(f"Not in this cache, so left out: {', '.join(f'sub-{p}' for p in gone)}.")
    return {"designs": designs, "subjects": picked}


def _split_fields(base: StudyConfig) -> dict[str, Any]:
    """How each person's volumes are split, the folds, and whether NONE is a class."""
    c1, c2, c3 = st.columns(3)
    split = c1.selectbox(
        "Split (within a person)",
        _with(_SPLITS, base.split),
        index=_with(_SPLITS, base.split).index(base.split),
        help="LOSO always leaves one person out; 'random' splits single volumes and is "
        "leaky (inflated accuracy).",
    )
    n_folds = c2.number_input(
        "Folds (run groups; empty: one per run)",
        min_value=2,
        max_value=8,
        value=base.n_folds,
        step=1,
        placeholder="one per run",
    )
    include_none = c3.checkbox("Also decode NONE (6 classes)", value=base.include_none)
    return {"split": split, "n_folds": n_folds, "include_none": include_none}


def _training_fields(t: TrainConfig) -> dict[str, Any]:
    """The training loop's settings, two rows of four."""
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input("Epochs", min_value=1, value=t.epochs, step=1)
    lr = c2.number_input(
        "Learning rate",
        min_value=1e-6,
        max_value=0.999999,
        value=float(t.lr),
        step=1e-4,
        format="%.6g",
    )
    batch_size = c3.number_input("Batch size", min_value=1, value=t.batch_size, step=1)
    dropout = c4.number_input(
        "Dropout", min_value=0.0, max_value=0.99, value=float(t.dropout), step=0.05
    )
    c1, c2, c3, c4 = st.columns(4)
    class_weights = c1.checkbox(
        "Class weights",
        value=t.class_weights,
        help="weight the loss by inverse class frequency",
    )
    seed = c2.number_input("Seed", value=t.seed, step=1)
    device = c3.selectbox(
        "Device", _with(_DEVICES, t.device), index=_with(_DEVICES, t.device).index(t.device)
    )
    compile_ = c4.selectbox(
        "torch.compile",
        _with(_COMPILE, t.compile),
        index=_with(_COMPILE, t.compile).index(t.compile),
    )
    return {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "dropout": dropout,
        "class_weights": class_weights,
        "seed": seed,
        "device": device,
        "compile": compile_,
    }


def _analysis_fields(base: StudyConfig) -> dict[str, Any]:
    """What the study computes after training: the permutations, the single-case tests' α,
    the linear baseline, the saliency maps and which designs get a final model."""
    c1, c2, c3, c4 = st.columns(4)
    n_permutations = c1.number_input(
        "Permutations (chance level)", min_value=1, value=base.n_permutations, step=100
    )
    alpha = c2.number_input(
        "α of the single-case tests",
        min_value=1e-4,
        max_value=0.5,
        value=float(base.alpha),
        step=0.01,
        format="%.4g",
        help="The chance of flagging a typical person for anything in the verdict (the "
        "primary analysis, tested in an order fixed in advance); exploratory designs are "
        "Holm-adjusted at this level within each design",
    )
    baseline = c3.checkbox("Linear baseline", value=base.baseline)
    saliency = c4.checkbox("Saliency maps", value=base.saliency)
    refittable = [d for d in DESIGNS if d != "loso"]
    refit = st.multiselect(
        "Final model on all the data for",
        refittable,
        default=[d for d in base.designs if d in refittable and base.refits(d)],
        help="the model the other pages run on new volumes; LOSO keeps one model per "
        "held-out person either way",
    )
    return {
        "n_permutations": n_permutations,
        "alpha": alpha,
        "baseline": baseline,
        "saliency": saliency,
        "refit": refit,
    }


def _recorded_caption(t: TrainConfig) -> None:
    """The recorded settings the form does not offer, which the retrain uses as they were."""
    st.caption(
        f"Also used, as recorded: network widths {'-'.join(map(str, t.widths))}, "
        f"{t.hidden} hidden units, bf16 autocast {_on(t.amp)} (GPU only), channels-last "
        f"{_on(t.channels_last)}, {t.prefetch} batches read ahead; every fold is run."
    )
