"""The emotion colours stay apart, for everybody and under deuteranopia."""

import itertools

import numpy as np

from emocore.constants import EMOTION_COLORS, EMOTIONS

# Machado, Oliveira & Fernandes (2009), deuteranopia at severity 1, on linear RGB.
DEUTERANOPIA = np.array(
    [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ]
)
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
D65 = np.array([0.95047, 1.0, 1.08883])


def lab(hex_colour: str, *, deuteranopia: bool = False) -> np.ndarray:
    """CIELAB (D65) of an sRGB colour, optionally as a deuteranope sees it."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    if deuteranopia:
        linear = np.clip(DEUTERANOPIA @ linear, 0, 1)
    t = SRGB_TO_XYZ @ linear / D65
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def smallest_difference(*, deuteranopia: bool) -> float:
    return min(
        float(
            np.linalg.norm(
                lab(EMOTION_COLORS[a], deuteranopia=deuteranopia)
                - lab(EMOTION_COLORS[b], deuteranopia=deuteranopia)
            )
        )
        for a, b in itertools.combinations(EMOTIONS, 2)
    )


def test_any_two_emotions_are_at_least_delta_e_40_apart():
    # the measuring stick first: CIELAB of white and of pure red (published values)
    np.testing.assert_allclose(lab("#FFFFFF"), [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab("#FF0000"), [53.24, 80.09, 67.20], atol=0.05)
    assert smallest_difference(deuteranopia=False) >= 40


def test_emotions_stay_distinct_under_deuteranopia():
    assert smallest_difference(deuteranopia=True) >= 30
