"""emocore's outputs as BIDS derivatives: ``dataset_description.json`` and BIDS file names.

A folder emocore writes (the cache of ``emocore prepare``, a run's results folder, the saliency
maps of one design) gets a ``dataset_description.json`` that marks it as a *derivative* dataset
(BIDS 1.9, "Derivatives"): who made it (``GeneratedBy``: emocore and its version) and from what
(``SourceDatasets``: ``file://`` URIs of the folders it was made from). nilearn, pybids, fitlins
and NeuroVault uploaders can then index it without glue code.

File names follow the BIDS entity rules: ``key-label`` pairs joined by ``_``, then a suffix and
an extension; a label is letters and digits only (no '-', '_' or spaces), so an emotion such as
``LOVE`` becomes ``desc-love``. ``saliency`` is not a suffix the specification defines; BIDS
derivatives keep custom suffixes readable by naming the quantity (as fitlins' ``statmap``), and
the JSON sidecar next to every map says exactly what the numbers are.

Everything here except :func:`write_dataset_description` is a pure function of its arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from emocore._io import atomic_write_json
from emocore.errors import ConfigError

__all__ = [
    "BIDS_VERSION",
    "DESCRIPTION_FILE",
    "bids_label",
    "file_uri",
    "linear_pattern_relpath",
    "saliency_filename",
    "saliency_map_path",
    "saliency_relpath",
    "sidecar_path",
    "write_dataset_description",
]

#: The BIDS release whose derivative fields (DatasetType, GeneratedBy, SourceDatasets) we write.
BIDS_VERSION = "1.9.0"
DESCRIPTION_FILE = "dataset_description.json"

_LABEL = re.compile(r"[A-Za-z0-9]+")


def bids_label(what: str, value: object) -> str:
    """``value`` as a BIDS label: letters and digits only, else a ConfigError naming ``what``.

    Labels are kept as given (``"01"`` stays ``"01"``); callers lower-case where a scheme wants
    it. A leading ``sub-`` is *not* stripped here: ``"sub-01"`` is refused, pass ``"01"``.
    """
    if isinstance(value, str) and _LABEL.fullmatch(value):
        return value
    raise ConfigError(
        f"{what} {value!r} is not a BIDS label: it must be letters and digits only (no '-', '_', "
        f"'.' or spaces), such as '01' or 'love'"
    )


def file_uri(path: str | Path) -> str:
    """The ``file://`` URI of ``path`` made absolute, e.g. ``file:///data/cache``."""
    return Path(path).expanduser().resolve().as_uri()


def write_dataset_description(
    folder: str | Path,
    *,
    name: str,
    source_datasets: Sequence[str | Path] = (),
    description: str | None = None,
) -> Path:
    """Write ``folder/dataset_description.json`` for a derivative dataset atomically; return it.

    ``name`` is the dataset's ``Name``; ``source_datasets`` are the folders it was made from,
    written as ``SourceDatasets: [{"URL": "file:///absolute/path"}]`` (BIDS allows any URI
    there; an absolute ``file://`` URI is the one a reader on the same machine can follow).
    ``description``, if given, becomes ``GeneratedBy[0].Description`` (what this emocore step
    did). The folder is created if missing; an existing description is replaced whole.
    """
    from emocore import __version__  # here: emocore/__init__ may one day import this module

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"'name' must be a non-empty string; {name!r} was provided")
    if isinstance(source_datasets, (str, Path)):
        raise ConfigError(
            f"'source_datasets' must be a list of folders; {str(source_datasets)!r} was provided "
            f"as one string (wrap it in a list)"
        )
    generated_by: dict[str, str] = {"Name": "emocore", "Version": __version__}
    if description:
        generated_by["Description"] = description
    body = {
        "Name": name,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [generated_by],
        "SourceDatasets": [{"URL": file_uri(s)} for s in source_datasets],
    }
    if not body["SourceDatasets"]:
        del body["SourceDatasets"]  # optional in BIDS; an empty list says nothing
    return atomic_write_json(Path(folder) / DESCRIPTION_FILE, body, indent=2)


def saliency_filename(subject: str | None, emotion: str) -> str:
    """BIDS file name of one emotion's saliency map.

    ``saliency_filename("03", "LOVE") == "sub-03_desc-love_saliency.nii.gz"``; ``subject`` is
    the label without ``sub-``. With ``subject=None`` (a map over several people's volumes,
    e.g. the cross-subject model's) the name has no ``sub`` entity: ``desc-love_saliency.nii.gz``.
    That is the BIDS form for data that belong to no one participant (like the group-level
    statistical maps fitlins writes at the root of its derivative dataset); a made-up
    ``sub-group`` would pose as a participant that pybids would then list among the subjects.
    """
    desc = bids_label("emotion", emotion).lower()
    if subject is None:
        return f"desc-{desc}_saliency.nii.gz"
    return f"sub-{bids_label('subject', subject)}_desc-{desc}_saliency.nii.gz"


def saliency_relpath(subject: str | None, emotion: str) -> str:
    """Path of a saliency map below its design's folder: ``sub-03/sub-03_desc-love_...``.

    One person's map goes into that person's ``sub-<label>/`` folder (as BIDS places every
    participant's files); a map over several people stays at the folder's root.
    """
    name = saliency_filename(subject, emotion)
    return name if subject is None else f"sub-{subject}/{name}"


def linear_pattern_relpath(subject: str | None, emotion: str) -> str:
    """Path of the linear decoder's activation pattern for ``emotion``, next to the saliency maps.

    The same entities and folders as :func:`saliency_relpath`, suffix ``linearpattern``:
    ``linear_pattern_relpath("03", "LOVE") == "sub-03/sub-03_desc-love_linearpattern.nii.gz"``;
    with ``subject=None``, ``desc-love_linearpattern.nii.gz`` at the folder's root.
    """
    desc = bids_label("emotion", emotion).lower()
    if subject is None:
        return f"desc-{desc}_linearpattern.nii.gz"
    label = bids_label("subject", subject)
    return f"sub-{label}/sub-{label}_desc-{desc}_linearpattern.nii.gz"


def saliency_map_path(
    design_dir: str | Path, model: str, emotion: str, entry: Mapping[str, Any] | None = None
) -> Path | None:
    """The saliency map of ``model`` for ``emotion`` in ``design_dir``, or None if there is none.

    ``design_dir`` is a run's ``saliency/<design>/``; ``entry`` is that map's entry in the run's
    study.json (``study["saliency"][design][model][emotion]``), whose ``file`` names it. This is
    the one place that knows both naming schemes, tried in this order:

    1. ``entry["file"]``, relative to ``design_dir`` (every run records it);
    2. the BIDS name implied by the model's name: ``sub-XX`` models are about person XX
       (``sub-XX/sub-XX_desc-<emotion>_saliency.nii.gz``), any other model about several
       people (``desc-<emotion>_saliency.nii.gz``);
    3. the name runs made before emocore wrote BIDS derivatives used:
       ``<model>_<EMOTION>.nii.gz``.
    """
    folder = Path(design_dir)
    candidates: list[str] = []
    recorded = (entry or {}).get("file")
    if isinstance(recorded, str) and recorded:
        candidates.append(recorded)
    subject = model.removeprefix("sub-") if model.startswith("sub-") else None
    if (subject is None or _LABEL.fullmatch(subject)) and _LABEL.fullmatch(emotion):
        candidates.append(saliency_relpath(subject, emotion))
    candidates.append(f"{model}_{emotion}.nii.gz")  # before BIDS names
    for relpath in candidates:
        path = folder / relpath
        # a recorded name is data, not code: never follow it out of the design's folder
        if ".." not in Path(relpath).parts and not Path(relpath).is_absolute() and path.is_file():
            return path
    return None


def sidecar_path(image: str | Path) -> Path:
    """The JSON sidecar next to a NIfTI file: ``x.nii.gz`` -> ``x.json`` (BIDS inheritance)."""
    image = Path(image)
    stem = image.name
    for ext in (".nii.gz", ".nii"):
        if stem.endswith(ext):
            return image.with_name(stem[: -len(ext)] + ".json")
    raise ConfigError(f"{image} is not a NIfTI file (.nii or .nii.gz); it has no BIDS sidecar")
