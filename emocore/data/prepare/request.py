"""What one prepare call asks the cache to hold, read once from the dataset and annotations."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from emocore.constants import CLASSES
from emocore.data.bids import Dataset, discover_dataset
from emocore.data.cache import labels_sha256
from emocore.data.labels import (
    build_volume_labels,
    find_annotation_files,
    label_counts,
    load_annotations,
)
from emocore.data.prepare.manifest import absolute
from emocore.data.prepare.options import PrepareOptions
from emocore.errors import DataError


@dataclass(frozen=True)
class Request:
    """What one prepare call asks the cache to hold: the runs found, their source fingerprints,
    the label table and the manifest's record of both (see :func:`read_request`)."""

    bids: str | Path  # as given: the dataset is found below it again for a rebuild
    dataset: Dataset
    sources: dict[str, list[str]]  # each person's run fingerprints, computed once
    labels: pd.DataFrame
    label_text: bytes  # labels.tsv as written
    labels_block: dict[str, Any]  # the manifest's ``labels``
    label_key: str  # what the label table depends on, hashed
    annotation_sha: dict[str, str]
    label_warnings: list[str]  # observer files that give no vote
    # Absolute: a dashboard or a job started in another folder finds the data again.
    bids_path: str
    annotations_path: str

    @property
    def folder(self) -> str:
        """The folder the runs were found in, as the manifest records it."""
        return absolute(self.dataset.base or self.bids)


def read_request(
    bids: str | Path,
    annotations: str | Path,
    opts: PrepareOptions,
    subjects: Sequence[str] | None,
) -> Request:
    """Find the runs and read the annotations: the people's runs must match the label table
    in length; every run and annotation file is fingerprinted."""
    dataset = discover_dataset(
        bids, task=opts.task, acq=opts.acq, space=opts.space, desc=opts.desc, subjects=subjects
    )
    files = find_annotation_files(annotations)
    ann = load_annotations(annotations)
    labels = build_volume_labels(
        ann, lag_s=opts.lag_s, recipe=opts.recipe, observers=opts.observers
    )
    check_lengths(dataset, labels)
    ann_files = sorted(list(files.observers.values()) + ([files.scenes] if files.scenes else []))
    annotation_sha = {p.name: _sha256(p) for p in ann_files}
    label_inputs = {
        "lag_s": opts.lag_s,
        "recipe": opts.recipe,
        "observers": opts.observers,
        "annotations": annotation_sha,
    }
    sources = {s.subject: [fingerprint(r.path) for r in s.runs] for s in dataset.subjects}
    label_text = labels.to_csv(sep="\t", index=False).encode()
    labels_block = {
        "file": "labels.tsv",
        "classes": list(CLASSES),
        "counts": label_counts(labels),
        "annotation_sha256": annotation_sha,
        "report": getattr(ann, "report_summary", lambda: {})(),
        "sha256": labels_sha256(label_text),  # the table this manifest belongs to
    }
    return Request(
        bids=bids,
        dataset=dataset,
        sources=sources,
        labels=labels,
        label_text=label_text,
        labels_block=labels_block,
        label_key=_digest(label_inputs),
        annotation_sha=annotation_sha,
        label_warnings=[
            f"{files.folder / name} {why}; it gives no vote"
            for name, why in ann.report.unusable.items()
        ],
        bids_path=absolute(bids),
        annotations_path=absolute(annotations),
    )


def fingerprint(path: Path, head: int = 2**20) -> str:
    """Size plus SHA-256 of the first and last MiB: cheap on 1.5 GB files, catches re-exports."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(head))
        if size > head:
            fh.seek(max(size - head, head))
            h.update(fh.read(head))
    return h.hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def check_lengths(dataset: Dataset, labels) -> None:
    """Every person's runs must have one volume per row of the label table."""
    for subj in dataset.subjects:
        n = sum(r.n_volumes for r in subj.runs)
        if n != len(labels):
            raise DataError(
                f"the label table has {len(labels)} volumes but sub-{subj.subject} has {n}"
            )
