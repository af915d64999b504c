"""A synthetic studyforrest-like cohort that the real reading code consumes unchanged.

The same cohort (the same BOLD data for the same config) is written in one of three layouts
(``SynthConfig.layout``); ``annotations/`` and ``ground_truth/`` are at the same places in all
three, so ``emocore prepare --bids OUT --annotations OUT/annotations`` is the command in every
layout (raw: add ``--acq dico``, as for the real ds000113)::

    annotations/raw/av1o01..09.csv, ao1o01..03.csv   raw observer format (Labs et al. 2015)
    annotations/movie_scenes.csv                      start, location, DAY|NIGHT, INT|EXT
    ground_truth/patterns/<EMOTION>.nii.gz            cohort pattern of each emotion (peak 1)
    ground_truth/patterns/sub-XX_<EMOTION>.nii.gz     each person's pattern (shift, gain, atypical)
    ground_truth/shared/map.nii.gz                    the shared response's map (peak 1)
    ground_truth/shared/sub-XX_map.nii.gz             each person's map (shift, gain)
    ground_truth/shared/envelope.tsv                  its time course (not written at shared=0)
    ground_truth/episodes.tsv, brain_mask.nii.gz
    ground_truth/cohort.json        config, layout, bold_file (path template), people
    dataset_description.json, README

``derivative`` (default): the ds000113 aligned derivative, as the DeepEmotion prototype read it::

    derivatives/non-linear_anatomical_alignment/sub-XX/ses-forrestgump/func/
        sub-XX_ses-forrestgump_task-forrestgump_rec-dico7Tad2grpbold7TadNL_run-0N_bold.nii.gz

``raw``: like OpenNeuro ds000113 (no ``derivatives/``); ``acq-dico`` holds the same data as the
derivative layout, ``acq-raw`` the same data shifted by one voxel along y (the geometry before
distortion correction), so reading the wrong one is not silently identical::

    sub-XX/ses-forrestgump/func/sub-XX_ses-forrestgump_task-forrestgump_acq-dico_run-0N_bold.nii.gz
    sub-XX/ses-forrestgump/func/sub-XX_ses-forrestgump_task-forrestgump_acq-raw_run-0N_bold.nii.gz
        (each with a .json sidecar: RepetitionTime 2.0, TaskName forrestgump)

``fmriprep``: ``out`` is an fMRIPrep derivative folder (``DatasetType`` "derivative"); the
confounds table is what ``nilearn.interfaces.fmriprep.load_confounds`` reads (motion, wm_csf,
global_signal, high_pass, scrub)::

    sub-XX/ses-forrestgump/func/sub-XX_ses-forrestgump_task-forrestgump_run-0N_
        space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz (+ .json)
        space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz
    sub-XX/ses-forrestgump/func/sub-XX_ses-forrestgump_task-forrestgump_run-0N_
        desc-confounds_timeseries.tsv (+ .json)

Signal model, per person and volume (acquired at movie time ``start_k + 2 i``)::

    bold = baseline * (1 + 0.01 * (signal * amplitude * sum_e pattern_e * hrf_e(t)
                                   + shared * map(x) * envelope(t) + noise * n(t)))

* baseline: nilearn's MNI152 template (shipped, no download), resampled to the grid.
* pattern_e: Gaussian blobs at plausible MNI coordinates per emotion, shifted and scaled per
  person (fear most consistent, love most variable). The atypical person's LOVE pattern is mostly
  their SADNESS pattern (like subject 18 of the poster).
* hrf_e: the true episodes (boxcars) convolved with nilearn's Glover HRF, 1 on a long block. The
  16-s run overlaps repeat the same movie time, hence the same stimulus.
* shared response (``shared`` > 0, default 0.8): everybody hears the same movie, so real BOLD
  carries a strong stimulus-driven response common to all people (inter-subject correlation,
  Hasson et al. 2004). envelope(t) is the soundtrack's loudness (smoothed Gaussian noise on
  time scales of 2 and 20 s) convolved with the Glover HRF, scaled to sd 1 over the movie; it is
  drawn from the cohort's own stream (the seed alone), on movie time, so it is the same time
  course in everyone and the 16-s run overlaps repeat it. map(x) peaks at 1 on the auditory
  cortex (bilateral Heschl's gyri and lateral superior temporal gyri) and reaches 0.35 on a
  wider language network (posterior STS, anterior STG, inferior frontal gyri); each person's map
  is shifted (sd 2 mm per axis) and scaled (log-gain sd 0.2), both times ``variability``.
  ``shared`` is thus the response's sd in % signal at the auditory peak. ``shared_emotion`` f
  makes about f of the envelope's variance a mix of the emotion regressors (louder in ANGER and
  FEAR, quieter in SADNESS and LOVE); ``signal=0`` turns that part off. The map and envelope are
  in ``ground_truth/shared/``.
* n(t): voxelwise AR(1) noise (rho 0.5, mildly smoothed in space), a global fluctuation shared by
  all voxels, slow cosine drift (times ``drift``) and an offset per run. ``signal=0`` leaves only
  these; the noise does not depend on ``signal``, so cohorts that differ only in ``signal`` share
  their noise.
* head motion (``motion`` > 0): ``+ motion * sum_j m_j(t) * map_j(x)`` in the % change, not scaled
  by ``noise``. m_j are six smooth traces per run (trans_x/y/z in mm, rot_x/y/z in rad; a smoothed
  random walk plus smoothed jitter, sd 0.15 mm and 0.002 rad); map_j is the first-order change of
  the baseline when its content moves (``-100 * grad(baseline) . displacement_j / baseline``: a
  shift along an axis for translations, a rotation about the brain's centre for rotations), so it
  is strongest at the brain's edges. The maps are scaled so that ``motion=1`` gives an RMS of 1 %
  over the brain, like the voxel noise (1.2 %). The traces come from their own random stream, so
  ``motion=0`` changes nothing else; the fmriprep layout writes them to the confounds table.

Random streams are seeded from ``(seed, subject, run)`` (the motion traces from
``(seed, subject, 100 + run)``, each person's shared map from ``(seed, subject, 200)``, the
soundtrack from ``(seed, 0, 300)``), so one person's files do not depend on how many others are
made, and ``motion=0``, ``shared=0`` give the data of cohorts made before those options existed.
Runs are computed in blocks of volumes, so a full-size run never needs more than its int16
output plus a few blocks in memory.

Synthetic observers annotate the true episodes with jittered boundaries, several rows per episode
(different characters), rows without emotion and false alarms. Calibrated so that the poster's
label recipe (4-s lag) gives per-class counts near the real ones and mostly matches the episodes.

The parts live in modules of their own: :mod:`.config` (the options, the field of view, the random
streams), :mod:`.movie` (episodes, regressors, the soundtrack, annotations), :mod:`.signal` (the
template brain, patterns, shared map, head motion and each run's BOLD), :mod:`.layouts` (file
names, sidecars, fMRIPrep's mask and confounds) and :mod:`.cohort` (writing it all).
"""

from emocore.data.synthetic.cohort import generate_cohort, planted_subjects
from emocore.data.synthetic.config import (
    FOV_EXTENT_MM,
    FOV_LOW_MM,
    LAYOUTS,
    OtherCohortError,
    SynthConfig,
    grid_for,
)

__all__ = [
    "OtherCohortError",
    "SynthConfig",
    "LAYOUTS",
    "generate_cohort",
    "planted_subjects",
    "grid_for",
    "FOV_LOW_MM",
    "FOV_EXTENT_MM",
]
