"""The DCASE layout reader, on the official split files and on a folder of real clips."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asclib.data import (COARSE_OF, EXCLUDED_FILES_VARIABLE, SCENES, AudioError, AudioFormatWarning,
                         BadFilesWarning, DatasetError, check_dataset, exclude_files, load_audio, load_events,
                         load_index, parse_filename, read_layout, read_split)
from conftest import PAPER, QUICK, write_layout

# --- the official fold-1 split files -------------------------------------------------------------

def test_official_train_split_counts(released_dir):
    train = read_split(released_dir / "fold1_train.csv")
    assert len(train) == 13_965
    assert train["device"].value_counts().to_dict() == {
        "a": 10_215, "b": 750, "c": 750, "s1": 750, "s2": 750, "s3": 750}
    assert set(train["scene"]) == set(SCENES)


def test_official_evaluate_split_counts_with_crlf(released_dir):
    assert b"\r\n" in (released_dir / "fold1_evaluate.csv").read_bytes()
    evaluate = read_split(released_dir / "fold1_evaluate.csv")
    assert len(evaluate) == 2_970
    assert set(evaluate["device"].value_counts()) == {330} and evaluate["device"].nunique() == 9
    assert set(evaluate["scene"].value_counts()) == {297}
    assert not evaluate["scene"].str.endswith("\r").any()
    train = read_split(released_dir / "fold1_train.csv")
    assert not set(train["location"]) & set(evaluate["location"])


# --- a folder in the real layout built from the 13 real clips -----------------------------------

def test_index_of_real_clips(real_layout):
    index = load_index(real_layout, PAPER)
    assert len(index) == 13
    row = index.set_index("filename").loc["audio/tram-stockholm-284-8588-s4.wav"]
    assert (row["scene"], row["coarse"], row["device"], row["device_group"]) == ("tram", "transportation", "s4", "s4-s6")
    assert (row["city"], row["location"], row["split"]) == ("stockholm", "stockholm-284", "evaluate")
    assert (index["split"] == "train").sum() == 12
    assert set(index.loc[index["split"] == "train", "device"]) == {"a"}
    assert sorted(index["city"].unique()) == ["barcelona", "helsinki", "lisbon", "london", "lyon",
                                              "milan", "paris", "stockholm", "vienna"]
    assert list(index["scene"].cat.categories) == list(SCENES)
    assert all(COARSE_OF[s] == c for s, c in zip(index["scene"], index["coarse"]))


def test_a_dataset_without_an_event_list_is_an_error_or_an_empty_list(real_layout):
    with pytest.raises(DatasetError, match="event list not found: .*events.tsv"):
        load_events(real_layout)
    events = load_events(real_layout, missing_ok=True)
    assert events.empty and list(events.columns) == ["filename", "onset", "offset", "event_label"]


def test_real_clips_load_at_full_length(real_layout, real_clips):
    assert sf.info(real_clips[0]).subtype == "PCM_24"
    index = load_index(real_layout, PAPER)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audio = load_audio(index["path"].iloc[0], PAPER)
    assert audio.dtype == np.float32 and audio.shape == (441_000,)
    assert 0 < np.abs(audio).max() <= 1


# --- bad input -----------------------------------------------------------------------------------

def small_layout(root: Path, n=4, **kwargs) -> Path:
    rng = np.random.default_rng(0)
    names = [f"park-espoo-{i}-{i}-a.wav" for i in range(n)]
    clips = {name: 0.1 * rng.standard_normal(64_000).astype(np.float32) for name in names}
    return write_layout(root, clips, train=set(names[: n // 2]), **kwargs)


def test_small_layout_loads(tmp_path):
    index = load_index(small_layout(tmp_path / "d"), QUICK)
    assert list(index["split"].value_counts().sort_index()) == [2, 2, 0]


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset folder not found: .*nowhere"):
        load_index(tmp_path / "nowhere", QUICK)


@pytest.mark.parametrize("name", ["meta.csv", "evaluation_setup/fold1_evaluate.csv"])
def test_missing_meta_or_split_file_names_it_and_the_archive(tmp_path, name):
    root = small_layout(tmp_path / "d")
    (root / name).unlink()
    with pytest.raises(DatasetError, match=rf"missing {name}.*meta archive"):
        load_index(root, QUICK)


def test_files_missing_on_disk_are_reported_once_with_a_count(tmp_path):
    root = small_layout(tmp_path / "d", n=8)
    for path in sorted((root / "audio").glob("*.wav"))[:7]:
        path.unlink()
    with pytest.raises(DatasetError, match=r"7 of 8 file\(s\) .* missing on disk: audio/park-espoo-0-0-a.wav, .*\(2 more\)"):
        load_index(root, QUICK)


def test_unknown_scene_label(tmp_path):
    root = small_layout(tmp_path / "d")
    meta = root / "meta.csv"
    meta.write_text(meta.read_text().replace("\tpark\t", "\tbeach\t", 1))
    with pytest.raises(DatasetError, match=r"meta.csv: 1 row\(s\) with an unknown scene label \(beach\)"):
        load_index(root, QUICK)


def test_label_disagreeing_with_file_name(tmp_path):
    root = small_layout(tmp_path / "d")
    split = root / "evaluation_setup" / "fold1_train.csv"
    split.write_text(split.read_text().replace("\tpark", "\tbus", 1))
    with pytest.raises(DatasetError, match="fold1_train.csv: scene label disagrees"):
        load_index(root, QUICK)


def test_split_file_listing_unknown_clip(tmp_path):
    root = small_layout(tmp_path / "d")
    split = root / "evaluation_setup" / "fold1_train.csv"
    split.write_text(split.read_text() + "audio/bus-espoo-9-9-b.wav\tbus\n")
    with pytest.raises(DatasetError, match=r"1 file\(s\) not listed in meta.csv: audio/bus-espoo-9-9-b.wav"):
        load_index(root, QUICK)


def test_a_clip_in_both_training_and_evaluation_is_refused(tmp_path):
    """A clip listed for training and for evaluation (here in every split file, so nothing else
    is wrong) would be scored on what the model learnt from."""
    root = small_layout(tmp_path / "d")
    shared = "audio/park-espoo-0-0-a.wav"  # a training clip of `small_layout`
    setup = root / "evaluation_setup"
    with open(setup / "fold1_evaluate.csv", "a", newline="") as split:
        split.write(f"{shared}\tpark\r\n")
    with open(setup / "fold1_test.csv", "a") as split:
        split.write(f"{shared}\n")
    with pytest.raises(DatasetError, match=r"1 file\(s\) are in both fold1_train.csv and fold1_evaluate.csv: " + re.escape(shared)):
        read_layout(root)


def test_badly_named_file():
    with pytest.raises(DatasetError, match="does not follow"):
        parse_filename("audio/park_espoo_1.wav")
    with pytest.raises(DatasetError, match="unknown device 'z9'"):
        parse_filename("audio/park-espoo-1-2-z9.wav")


def test_unreadable_and_empty_wav(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav file")
    with pytest.raises(AudioError, match=r"broken.wav: cannot be read as audio"):
        load_audio(broken, QUICK)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16_000)
    with pytest.raises(AudioError, match="empty.wav: contains no samples"):
        load_audio(empty, QUICK)
    with pytest.raises(AudioError, match="audio file not found"):
        load_audio(tmp_path / "absent.wav", QUICK)


def test_format_mismatches_are_adapted_with_a_warning(tmp_path):
    n = 64_000  # the quick profile's 4 s at 16 kHz
    tone = np.sin(2 * np.pi * 440 * np.arange(2 * n) / 32_000).astype(np.float32)
    cases = {
        "rate.wav": (tone, 32_000, "sample rate 32000 Hz, resampled"),
        "stereo.wav": (np.stack([tone[:n], tone[:n]], axis=1), 16_000, "2 channels, down-mixed"),
        "short.wav": (tone[: n // 2], 16_000, "32000 samples where 64000 were expected.*padded"),
        "long.wav": (tone[: n + 100], 16_000, "64100 samples .* trimmed"),
    }
    loaded = {}
    for name, (samples, rate, message) in cases.items():
        sf.write(tmp_path / name, samples, rate)
        with pytest.warns(AudioFormatWarning, match=message):
            loaded[name] = load_audio(tmp_path / name, QUICK)
        assert loaded[name].shape == (n,) and loaded[name].dtype == np.float32, name
    assert np.all(loaded["short.wav"][n // 2:] == 0)
    expected = np.sin(2 * np.pi * 440 * np.arange(1000, 2000) / 16_000)
    assert np.corrcoef(loaded["rate.wav"][1000:2000], expected)[0, 1] > 0.99


# --- the dataset check of `python -m asclib reproduce` -------------------------------------------

def broken_layout(root: Path) -> tuple[Path, set[str]]:
    """A quick-format layout of 8 clips, 5 of them bad in a different way each."""
    root = small_layout(root, n=8)
    audio = root / "audio"
    clips = sorted(audio.glob("*.wav"))
    clips[0].unlink()
    tone = 0.1 * np.ones(128_000, np.float32)
    sf.write(clips[1], tone, 32_000)  # 4 s, but at 32 kHz
    sf.write(clips[2], np.stack([tone[:64_000]] * 2, axis=1), 16_000)
    sf.write(clips[3], tone[:48_000], 16_000)
    clips[4].write_text("not audio")
    return root, {f"audio/{clip.name}" for clip in clips[:5]}


def test_check_reports_every_problem_in_one_error(tmp_path):
    root, bad = broken_layout(tmp_path / "d")
    with pytest.raises(DatasetError) as caught:
        check_dataset(root, QUICK, progress=False)
    message = str(caught.value)
    assert "5 of 8 listed file(s) cannot be read as the quick profile expects (mono wav, 16000 Hz, 4 s)" in message
    assert ("missing: 1 file(s), sample rate: 1 file(s), channels: 1 file(s), length: 1 file(s), "
            "unreadable: 1 file(s)") in message
    assert all(name in message for name in bad)
    assert "32000 Hz" in message and "48000 samples (3 s)" in message and "--skip-bad-files" in message


def test_skipped_bad_files_are_left_out_of_the_index(tmp_path, monkeypatch):
    root, bad = broken_layout(tmp_path / "d")
    with pytest.warns(BadFilesWarning, match="These files are left out"):
        problems = check_dataset(root, QUICK, skip_bad=True, progress=False)
    assert set(problems["filename"]) == bad and len(problems) == 5
    with pytest.raises(DatasetError, match="missing on disk"):
        load_index(root, QUICK)
    assert len(load_index(root, QUICK, exclude=problems["filename"])) == 3

    monkeypatch.setenv(EXCLUDED_FILES_VARIABLE, "")  # restored after the test
    listing = exclude_files(problems, tmp_path / "results" / "excluded_files.csv")
    assert listing.is_file() and os.environ[EXCLUDED_FILES_VARIABLE] == str(listing.resolve())
    assert not set(load_index(root, QUICK)["filename"]) & bad
    exclude_files(problems.iloc[:0], listing)
    assert not listing.exists() and EXCLUDED_FILES_VARIABLE not in os.environ


def test_check_passes_the_real_clips_and_names_a_profile_mismatch(real_layout):
    assert check_dataset(real_layout, PAPER, progress=False).empty
    with pytest.raises(DatasetError, match=r"(?s)sample rate: 13 file\(s\).*is this the data set of the quick profile"):
        check_dataset(real_layout, QUICK, progress=False)
