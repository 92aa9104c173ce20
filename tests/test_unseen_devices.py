"""Unseen devices (issue: unseen devices): the microphone pools chosen by measurement, the
evaluation-only devices s7-s11, and how they are reported. The methods after the paper (DIR,
Freq-MixStyle) are tests/test_later_methods.py's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asclib import devices, metrics, microphones
from asclib.data import DEVELOPMENT_DEVICES, DEVICES, GROUP_OF
from conftest import QUICK


def test_the_pools_split_all_66_responses_and_the_five_devices_have_five_makers():
    names, unseen, pool = microphones.names(), set(microphones.unseen_pool()), set(microphones.training_pool())
    assert len(names) == 66 and unseen | pool == set(names) and not unseen & pool
    assert unseen == set(microphones.UNSEEN_DEVICES.values()) and len(unseen) == 5  # every unseen device's microphone
    assert len({microphones.maker(name) for name in unseen}) == 5  # one maker each
    assert microphones.maker("Coles_4038") == microphones.maker("IR_STC4035") == "STC"  # a successor is its maker
    with pytest.raises(ValueError, match="no maker known"):
        microphones.maker("Nokia_3310")


def test_every_unseen_microphone_is_farther_from_every_training_one_than_their_median_distance():
    table = microphones.distances()
    pool, unseen = list(microphones.training_pool()), list(microphones.unseen_pool())
    within = table.loc[pool, pool].to_numpy()[np.triu_indices(len(pool), k=1)]
    assert table.loc[unseen, pool].to_numpy().min() > np.median(within)
    shown = microphones.unseen_distances()  # notebook 12's table says the same
    assert list(shown.index) == list(microphones.UNSEEN_DEVICES) and shown["farther than the median"].all()
    assert np.allclose(shown["distance (dB)"], table.loc[list(shown["microphone"]), pool].min(axis=1))
    assert np.allclose(shown["training pool: median (dB)"], np.median(within))


def test_the_selection_procedure_returns_the_fixed_unseen_devices_in_order():
    assert microphones.select_unseen() == tuple(microphones.UNSEEN_DEVICES.values())


def test_the_distance_is_zero_to_itself_blind_to_level_and_symmetric():
    a, b = "Sony_C37Fet", "IR_STC4035"
    response = microphones.response(a, 16_000)
    assert microphones.distance(a, a) == 0.0 and microphones.distance(response, 7.3 * response) < 1e-9
    assert np.isclose(microphones.distance(a, 0.01 * microphones.response(b, 16_000)), microphones.distance(a, b))
    assert microphones.distance(a, b) == microphones.distance(b, a) > 0.5
    table = microphones.distances()
    assert table.equals(table.T) and (np.diag(table) == 0).all() and (table.to_numpy() + np.eye(66) > 0).all()
    assert np.isclose(table.loc[a, b], microphones.distance(a, b))


def test_unseen_devices_use_only_unseen_microphones_and_training_devices_none():
    for name, chain in devices.DEVICE_CHAINS.items():
        if name in DEVELOPMENT_DEVICES:
            assert chain.microphone is None, name
        else:
            assert chain.microphone in microphones.unseen_pool() and GROUP_OF[name] == "s7-s11", name
    assert DEVICES[9:] == ("s7", "s8", "s9", "s10", "s11")


def test_a_response_is_resampled_and_has_unit_energy():
    response = microphones.response("Sony_C37Fet", 16_000)
    assert abs(np.sum(response**2) - 1) < 1e-9
    assert abs(len(response) - round(16_459 * 16_000 / 44_100)) <= 1
    with pytest.raises(ValueError, match="unknown microphone response 'Nokia'"):
        microphones.response("Nokia", 16_000)


def test_overall_is_over_the_development_devices_and_the_spread_over_all():
    table = pd.DataFrame({"device": ["a", "a", "s4", "s4", "s7", "s7"], "correct": [1, 1, 1, 0, 0, 0]})
    row = metrics.accuracy_by_device(table, decimals=None).iloc[0]
    assert row["overall"] == 75.0 and row["s7-s11"] == 0.0
    assert np.isclose(row[metrics.DEVICE_SPREAD], np.std([100.0, 50.0, 0.0]))


def test_a_real_data_set_is_joined_with_simulated_s7_s11_and_left_untouched(tmp_path, monkeypatch):
    import dataclasses

    from asclib import synth
    from asclib.data import load_index
    from conftest import write_layout

    rng = np.random.default_rng(0)
    names = [f"{scene}-lyon-{k}-{10 + k}-{device}.wav" for k, scene in enumerate(("park", "bus", "airport"))
             for device in ("a", "b")]
    real_layout = write_layout(tmp_path / "tau", {name: rng.standard_normal(64_000) * 0.1 for name in names},
                               train={names[0], names[1]})  # the park segment trains, the other two evaluate
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    profile = dataclasses.replace(QUICK, name="paper")  # a real data set at the quick profile's sizes
    before = sorted(path.name for path in (real_layout / "audio").iterdir())
    joined = synth.dataset(profile, real_layout)
    assert joined != real_layout and sorted(path.name for path in (real_layout / "audio").iterdir()) == before
    original, index = load_index(real_layout, profile), load_index(joined, profile)
    added = index[~index["filename"].isin(original["filename"])]
    sources = original[(original["split"] == "evaluate") & (original["device"] == "a")]
    assert len(added) == 5 * len(sources) == 10
    assert set(added["device"].astype(str)) == set(DEVICES[9:]) and set(added["split"]) == {"evaluate"}
    kept = index[index["filename"].isin(original["filename"])].set_index("filename")
    pd.testing.assert_series_equal(kept["split"].sort_index(), original.set_index("filename")["split"].sort_index())
    stems = set(sources["filename"].str.rsplit("-", n=1).str[0])
    assert set(added["filename"].str.rsplit("-", n=1).str[0]) == stems  # parallel to device A's clips
    stamp = (joined / synth.JOINED_MANIFEST).stat().st_mtime_ns
    assert synth.dataset(profile, real_layout) == joined and (joined / synth.JOINED_MANIFEST).stat().st_mtime_ns == stamp
