"""Model complexity in the DCASE way (asclib.complexity): parameters pinned to the authors' code,
MACs counted by torch's flop counter and checked against hand counts, sizes per precision."""

from __future__ import annotations

import pytest
from torch import nn

from asclib import complexity
from conftest import PAPER, QUICK
from test_models import PAPER_COUNTS


@pytest.fixture(scope="module")
def table():
    return complexity.table()


def test_the_paper_profiles_parameters_equal_the_authors_code_and_the_sizes_follow(table):
    paper = table.loc["paper"]
    for (name, classes), count in PAPER_COUNTS.items():
        row = paper.loc[f"{name}-{classes}c"]
        assert row["parameters"] == count == row["parameters (authors' Keras code)"]
        assert row["float32 KiB"] == round(count * 4 / 1024, 1) and row["int8 KiB"] == round(count / 1024, 1)
    assert table.loc["quick", "parameters (authors' Keras code)"].isna().all()


def test_a_convolution_and_a_linear_layer_count_the_macs_a_hand_count_gives():
    # each of 8 output maps of 40 x 100 positions sums 3 channels x 3 x 3 taps
    assert complexity.macs(nn.Conv2d(3, 8, 3, padding=1, bias=False), (3, 40, 100)) == 8 * 40 * 100 * 3 * 3 * 3
    # stride 2 in time halves the positions
    assert complexity.macs(nn.Conv2d(3, 8, 3, stride=(1, 2), padding=1, bias=False), (3, 40, 100)) == 8 * 40 * 50 * 27
    assert complexity.macs(nn.Linear(10, 5), (10,)) == 50


def test_a_10_second_clip_is_the_papers_input_and_macs_grow_with_the_clip():
    assert complexity.input_shape(PAPER) == (3, 128, 423)  # the paper's 423 x 128 x 3
    assert complexity.input_shape(QUICK)[1] == QUICK.features.n_mels
    short, long = (complexity.input_shape(QUICK, seconds) for seconds in (5.0, 10.0))
    assert long[2] > 1.9 * short[2]
