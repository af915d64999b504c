"""Build the volume cache: BOLD runs on disk + annotations -> z-scored float16 arrays + labels.

Each run is decompressed once, in chunks of volumes, so memory stays bounded whatever the size of
the cohort: a chunk is (optionally) resampled, shifted by a per-voxel reference and written as
float16; the per-voxel mean and SD of the run are accumulated on the way. A second, cheap pass
over the float16 rows just written (from the page cache, not the .nii.gz) z-scores them and zeroes
voxels outside the brain.

The cache is built in a sibling folder ``<cache>.partial-<pid>`` and renamed into place at the
end, so a killed job never leaves half a cache; leftovers of dead jobs are removed on the next run.
Re-running with the same inputs and options does nothing; changing only the label options
(lag, recipe, observers) rewrites the label table and keeps the voxel data. People the cache does
not hold yet are added next to the others (only their runs are read; the manifest that names them
is replaced last), and people it holds are never dropped unless ``force`` rebuilds it with exactly
the people asked for: see :func:`prepare`.

A re-run also checks what the cache holds against its manifest: a ``labels.tsv`` that is not the
one the manifest records (a relabel killed between its two writes) is rewritten, and arrays cut
short, rewritten as another dtype or overwritten (their fingerprint changed) make it rebuild,
where it would otherwise have called the cache up to date. The manifest records absolute paths.

The steps live in modules of their own: :mod:`.options` (what is asked for, what was done),
:mod:`.request` (the runs and labels read once), :mod:`.grid`, :mod:`.volumes` (streaming runs
into float16 arrays), :mod:`.mask` (brain mask, mean EPI), :mod:`.manifest`, :mod:`.lock` and
:mod:`.folder` (the cache folder on disk), :mod:`.update` and :mod:`.extend` (a cache that
exists), and :mod:`.build` (:func:`prepare`, :func:`prepare_cache`).
"""

from emocore.data.prepare.build import prepare, prepare_cache
from emocore.data.prepare.options import PrepareOptions, PrepareResult, cleaning_sentence

__all__ = ["PrepareOptions", "PrepareResult", "cleaning_sentence", "prepare", "prepare_cache"]
