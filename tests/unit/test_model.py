from __future__ import annotations

import pytest
import torch

from emocore.errors import ConfigError
from emocore.models.cnn3d import SeedCNN, pooled_shape


@pytest.mark.parametrize("shape", [(7, 8, 9), (22, 29, 8), (13, 17, 5)])
def test_logits_shape_follows_any_grid(shape):
    model = SeedCNN(shape, n_classes=5)
    out = model(torch.randn(3, 1, *shape))
    assert out.shape == (3, 5)
    assert model.features(torch.randn(2, 1, *shape)).shape == (2, 128)


def test_full_grid_has_the_posters_parameter_count():
    # 132x175x48 -> 33x43x12 after two poolings; 64 * 17028 * 128 weights in the first dense layer
    assert pooled_shape((132, 175, 48)) == (33, 43, 12)
    with torch.device("meta"):
        model = SeedCNN((132, 175, 48))
    n = sum(p.numel() for p in model.parameters())
    assert 139_000_000 < n < 140_000_000


def test_widths_hidden_and_classes_are_configurable():
    model = SeedCNN((8, 9, 10), n_classes=6, widths=(4, 8, 16), hidden=32, dropout=0.2)
    assert model(torch.randn(2, 8, 9, 10)).shape == (2, 6)
    assert model.block3.conv.out_channels == 16 and model.fc1.linear.out_features == 32


def test_wrong_inputs_are_explained():
    with pytest.raises(ConfigError, match="at least 4 voxels"):
        SeedCNN((3, 8, 8))
    model = SeedCNN((8, 9, 10))
    with pytest.raises(
        ConfigError, match=r"input volumes are \(9, 9, 10\).*built for \(8, 9, 10\)"
    ):
        model(torch.randn(1, 1, 9, 9, 10))
