"""The nine augmentations: the registry, online batch transforms (asclib.batches), offline clip
generators, the compander."""

from __future__ import annotations

import re

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

import torch

from asclib import augment, batches
from asclib.compand import Compander, compand, transfer_gain
from asclib.data import load_index
from conftest import TINY, skip_or_fail

# --- the compander against SoX -------------------------------------------------------------------

SOX_TOLERANCE = 1e-6  # float32 output of sox; measured differences are about 3e-8


@pytest.mark.parametrize("compander", [*augment.DRC_SETS, augment.DRC_FALLBACK,
                                       Compander(((-90, -90), (-60, -50), (-20, -20), (0, 0)), 4),
                                       Compander(((-70, -60), (-60, -40), (-20, -10), (0, 0)), 3, knee_db=2)])
def test_compander_matches_sox(compander, tmp_path):
    if shutil.which("sox") is None:
        skip_or_fail("the sox binary is not installed (.ci/run installs it)", "ASC_REQUIRE_SOX")
    sr = 16_000
    t = np.arange(3 * sr) / sr
    rng = np.random.default_rng(0)
    audio = (0.5 * np.sin(2 * np.pi * 220 * t) * (0.01 + np.abs(np.sin(2 * np.pi * 0.7 * t)) ** 3)
             + 0.005 * rng.standard_normal(len(t))).astype(np.float32)
    sf.write(tmp_path / "in.wav", audio, sr, subtype="FLOAT")
    subprocess.run(["sox", str(tmp_path / "in.wav"), "-e", "floating-point", "-b", "32", str(tmp_path / "out.wav"),
                    *compander.sox_arguments()], check=True, capture_output=True)
    expected = sf.read(tmp_path / "out.wav")[0]
    ours = np.clip(compand(audio.astype(np.float64), sr, compander), -1, 1)  # sox clips at full scale
    assert np.abs(ours - expected).max() < SOX_TOLERANCE


def test_compander_curve_passes_through_its_points_away_from_knees():
    c = Compander(((-90, -70), (-60, -40), (0, 0)), gain_db=2)
    for level_db, out_db in ((-75, -55), (-30, -20 + 0)):
        gain_db = 20 * np.log10(transfer_gain(c, np.array([10 ** (level_db / 20)]))[0])
        expected = np.interp(level_db, [-90, -60, 0], [-70, -40, 0]) + 2
        assert abs(level_db + gain_db - expected) < 0.05, (level_db, level_db + gain_db, expected)


# --- online augmentations (the training path's torch functions, asclib.batches) ------------------

def _random_crop(batch: np.ndarray, frames: int, rng) -> np.ndarray:
    starts = batches.crop_starts(len(batch), batch.shape[-1], frames, rng)
    return batches.crop(torch.from_numpy(np.ascontiguousarray(batch)), torch.from_numpy(starts), frames).numpy()


def test_random_crop_keeps_consecutive_frames():
    rng = np.random.default_rng(0)
    batch = np.arange(2 * 3 * 4 * 10, dtype=np.float32).reshape(2, 3, 4, 10)
    cropped = _random_crop(batch, 7, rng)
    assert cropped.shape == (2, 3, 4, 7)
    for x, c in zip(batch, cropped):
        start = int(c[0, 0, 0] - x[0, 0, 0])
        assert np.array_equal(c, x[..., start:start + 7])
    with pytest.raises(ValueError, match="crop of 11 frames"):
        _random_crop(batch, 11, rng)


def test_random_crop_starts_as_the_reference():
    """numpy's randint(0, 423 - 400) of the reference: starts 0 to 22, all of them drawn."""
    batch = np.broadcast_to(np.arange(423, dtype=np.float32), (4000, 1, 1, 423))
    starts = _random_crop(batch, 400, np.random.default_rng(0))[:, 0, 0, 0].astype(int)
    assert sorted(set(starts)) == list(range(23))
    assert set(_random_crop(batch[:5, ..., :400], 400, np.random.default_rng(0))[:, 0, 0, 0]) == {0}


def test_spec_augment_masks_one_band_and_one_span_per_channel():
    rng = np.random.default_rng(0)
    batch = torch.ones((8, 3, 128, 423))
    out = batches.mask(batch, torch.from_numpy(batches.spec_augment_draws(tuple(batch.shape), 12, 39, rng))).numpy()
    assert batch.eq(1).all()  # the input is not modified
    for example in out:
        for channel in example:
            zero_rows = np.where(~channel.any(axis=1))[0]
            zero_cols = np.where(~channel.any(axis=0))[0]
            assert len(zero_rows) <= 12 and len(zero_cols) <= 39
            if len(zero_rows):
                assert np.all(np.diff(zero_rows) == 1)
    masks = [(~out[0, c].any(axis=1)).sum() for c in range(3)]
    assert len(set(masks)) > 1 or (~out[0, 0].any(axis=0)).sum() != (~out[0, 1].any(axis=0)).sum()


def test_mixup_gives_convex_combinations_and_soft_targets():
    rng = np.random.default_rng(0)
    x1, x2 = np.zeros((64, 3, 2, 2), np.float32), np.ones((64, 3, 2, 2), np.float32)
    y1, y2 = np.eye(10, dtype=np.float32)[np.zeros(64, int)], np.eye(10, dtype=np.float32)[np.ones(64, int)]
    weights = torch.from_numpy(batches.mixup_weights(64, 0.4, rng))
    x, y = (batches.mix(torch.from_numpy(a), torch.from_numpy(b), weights).numpy() for a, b in ((x1, x2), (y1, y2)))
    weight = 1 - x[:, 0, 0, 0]
    assert np.allclose(y[:, 0], weight, atol=1e-6) and np.allclose(y.sum(axis=1), 1)
    assert 0 <= weight.min() and weight.max() <= 1
    assert (np.abs(weight - 0.5) > 0.4).mean() > 0.3  # Beta(0.4, 0.4) puts much mass near 0 and 1


# --- offline augmentations -----------------------------------------------------------------------

def test_noise_leaves_exact_zeros_untouched():
    audio = np.zeros(1000)
    audio[500:] = 0.5
    out, params = augment.noise(audio, 16_000, np.random.default_rng(0), {})
    assert np.all(out[:500] == 0) and 0.008 < np.std(out[500:]) < 0.012 and params == {"std": 0.01}


def test_speed_change_keeps_the_length_and_tiles_short_results():
    audio = np.sin(np.arange(16_000) / 5.0)
    for seed in range(4):
        out, params = augment.speed_change(audio, 16_000, np.random.default_rng(seed), {})
        assert len(out) == len(audio) and 0.5 <= params["rate"] <= 2


@pytest.fixture(scope="module")
def tiny_index(tiny_corpus):
    return load_index(tiny_corpus, TINY)


@pytest.fixture(scope="module")
def augmented(tiny_index, tmp_path_factory):
    root = tmp_path_factory.mktemp("augmented")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASC_CACHE_DIR", str(root / "cache"))
        for method in augment.names("offline"):
            augment.generate_offline(tiny_index, TINY, method, seed=3, out_dir=root / method)
    return root


def test_offline_sets_are_datasets_with_provenance(augmented, tiny_index):
    rows = augment.load_augmented(TINY, augment.names("offline"), root=augmented)
    train = tiny_index[tiny_index["split"] == "train"]
    copies = TINY.augment.substitute_copies  # a substituting method (dir) makes several copies of each clip
    expected = {m: ((train["device"] == "a").sum() if spec.device_a_only else len(train)) * (copies if spec.substitutes else 1)
                for m, spec in augment.METHODS.items() if spec.kind == "offline"}
    assert rows["method"].value_counts().to_dict() == expected
    assert rows["filename"].is_unique and (rows["split"] == "train").all()
    assert all(re.search(rf"_{method}{'[0-9]+' if augment.METHODS[method].substitutes else ''}\.wav$", name)
               for name, method in zip(rows["filename"], rows["method"]))
    source = tiny_index.set_index("filename").loc[rows["source"]]
    assert list(source["scene"].astype(str)) == list(rows["scene"].astype(str))
    assert list(source["device"].astype(str)) == list(rows["device"].astype(str))
    assert rows["path"].map(lambda p: sf.info(p).frames == TINY.audio.n_samples).all()


def test_mix_partner_is_another_clip_of_the_same_scene(augmented, tiny_index):
    rows = augment.load_augmented(TINY, ["mix_audio"], root=augmented)
    scene_of = {f.split("/")[-1]: str(s) for f, s in zip(tiny_index["filename"], tiny_index["scene"])}
    for row in rows.itertuples():
        partner = __import__("json").loads(row.parameters)["partner"]
        assert partner != row.source.split("/")[-1] and scene_of[partner] == str(row.scene)


def test_offline_generation_is_deterministic_and_cached(augmented, tiny_index, tmp_path):
    again = augment.generate_offline(tiny_index, TINY, "pitch_shift", seed=3, out_dir=tmp_path / "p")
    first = sorted((augmented / "pitch_shift" / "audio").glob("*.wav"))[0]
    assert first.read_bytes() == (again / "audio" / first.name).read_bytes()
    stamp = (augmented / "pitch_shift" / "meta.csv").stat().st_mtime_ns
    augment.generate_offline(tiny_index, TINY, "pitch_shift", seed=3, out_dir=augmented / "pitch_shift")
    assert (augmented / "pitch_shift" / "meta.csv").stat().st_mtime_ns == stamp


def test_spectrum_correction_pools_all_non_a_training_devices(tiny_index, tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path))
    pooled = augment.correction_coefficients(tiny_index, TINY)
    only_s3 = tiny_index[~tiny_index["device"].isin(["b", "c", "s1", "s2"])]
    s3 = augment.correction_coefficients(only_s3, TINY)
    assert pooled.shape == (TINY.features.n_fft // 2 + 1,) and np.all(np.isfinite(pooled))
    assert np.abs(np.log(pooled / s3)).mean() > 0.05  # the reference's bug (s3 only) gives another curve
    with pytest.raises(ValueError, match="needs parallel training recordings"):
        augment.correction_coefficients(tiny_index[tiny_index["device"] == "a"], TINY)


def test_spectrum_correction_features_come_from_the_corrected_magnitudes(augmented, tiny_index, tmp_path,
                                                                          monkeypatch):
    """Spec 6.1 step 5: the reference computes the features of a corrected clip from the corrected
    STFT magnitudes; the carried log-mel is that, and the feature cache serves it."""
    from asclib import features
    from asclib.data import load_audio

    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path))
    row = augment.load_augmented(TINY, ["spectrum_correction"], root=augmented).iloc[0]
    source = tiny_index.set_index("filename").loc[row["source"], "path"]
    coefficients = augment.correction_coefficients(tiny_index, TINY, seed=3)
    audio = load_audio(source, TINY).astype(np.float64)
    expected = features.log_mel_of_power(features.power(audio, TINY) * (coefficients[:, None] ** 2), TINY)
    served = features.cached_log_mels([row["path"]], TINY, workers=1, progress=False)[0]
    assert np.allclose(served, expected, atol=1e-5)
    resynthesised = features.log_mel(load_audio(row["path"], TINY), TINY)
    assert np.abs(resynthesised - expected).max() > 1e-3  # what re-extracting the waveform would give
    plain = tiny_index[tiny_index["split"] == "train"]["path"].iloc[0]
    assert not features.carried_file(plain, TINY).exists()  # other clips are read from their audio


def test_spectrum_correction_is_made_again_for_other_feature_code(tiny_index, tmp_path, monkeypatch):
    """Its carried log-mels belong to one feature configuration and code: when the feature code
    changes, the set is made again with log-mels under the new key, never read without them."""
    from asclib import features

    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    folder = augment.generate_offline(tiny_index, TINY, "spectrum_correction", seed=3, out_dir=tmp_path / "spectrum_correction")
    first = augment.load_augmented(TINY, ["spectrum_correction"], root=tmp_path).iloc[0]["path"]
    stamp = (folder / "meta.csv").stat().st_mtime_ns
    augment.generate_offline(tiny_index, TINY, "spectrum_correction", seed=3, out_dir=folder)
    assert (folder / "meta.csv").stat().st_mtime_ns == stamp  # current: kept
    monkeypatch.setattr(features, "code_hash", lambda: "other feature code")
    assert not features.carried_file(first, TINY).exists()
    augment.generate_offline(tiny_index, TINY, "spectrum_correction", seed=3, out_dir=folder)
    assert (folder / "meta.csv").stat().st_mtime_ns != stamp and features.carried_file(first, TINY).exists()


def test_reverb_keeps_the_direct_path_at_time_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path))
    rirs = augment.rir_bank(TINY)
    assert len(rirs) == TINY.augment.rir_count
    impulse = np.zeros(8000)
    impulse[1000] = 0.5
    out, params = augment.reverb_drc(impulse, 16_000, np.random.default_rng(0), {"rirs": rirs})
    assert np.argmax(np.abs(out)) == 1000 and set(params) == {"rir", "drc_set"}
    assert augment.rir_bank(TINY)[0].tolist() == rirs[0].tolist()  # read back from the cache


def test_unknown_method_and_missing_set_are_named(tiny_index, tmp_path):
    with pytest.raises(ValueError, match="unknown offline augmentation 'echo'"):
        augment.generate_offline(tiny_index, TINY, "echo")
    with pytest.raises(FileNotFoundError, match="generate it first"):
        augment.load_augmented(TINY, ["noise"], root=tmp_path)


# --- the registry ------------------------------------------------------------------------------

NEW_METHOD = '''

def polarity(audio, sr, rng, context):
    return -audio, {}


register(Method("polarity", "offline", 9, "polarity inversion", polarity))
'''


def test_a_new_method_leaves_the_clips_of_the_others_current(tmp_path, monkeypatch):
    """Adding an offline method to augment.py (its function and its registration) keeps every
    other method's clips, hence every other run's key; changing one method's code renews its
    clips alone."""
    source = open(augment.__file__).read()
    before = {method: augment._code_hash(method) for method in augment.names("offline")}
    added = tmp_path / "augment_with_a_new_method.py"
    added.write_text(source + NEW_METHOD)
    namespace = {}
    exec(compile("def polarity(audio, sr, rng, context):\n    return -audio, {}\n", "new", "exec"), namespace)
    monkeypatch.setitem(augment.METHODS, "polarity",
                        augment.Method("polarity", "offline", 9, "polarity inversion", namespace["polarity"]))
    monkeypatch.setattr(augment, "__file__", str(added))
    assert {method: augment._code_hash(method) for method in before} == before
    assert augment._code_hash("polarity") not in before.values()

    changed = tmp_path / "augment_with_other_noise.py"
    assert source.count('rng.normal(0.0, 0.01, size=len(audio))') == 1
    changed.write_text(source.replace('rng.normal(0.0, 0.01, size=len(audio))', 'rng.normal(0.0, 0.02, size=len(audio))'))
    monkeypatch.setattr(augment, "__file__", str(changed))
    monkeypatch.delitem(augment.METHODS, "polarity")
    after = {method: augment._code_hash(method) for method in before}
    assert [method for method in before if after[method] != before[method]] == ["noise"]


def test_recipes_are_checked_by_name():
    assert augment.split(("spectrum_correction", "mixup", "random_crop", "noise")) == (
        ("mixup", "random_crop"), ("spectrum_correction", "noise"))
    with pytest.raises(ValueError, match=r"unknown augmentation\(s\) 'specaugment': expected names from"):
        augment.split(("mixup", "specaugment"))
    with pytest.raises(ValueError, match="seed id 4 of 'other' belongs to 'noise'"):
        augment.register(augment.Method("other", "offline", 4, "x", augment.noise))
    with pytest.raises(ValueError, match="offline augmentation 'other' has no function"):
        augment.register(augment.Method("other", "offline", 99, "x"))
