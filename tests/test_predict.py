"""Classifying new recordings with trained runs (`asclib.predict`, `python -m asclib predict`):
the mechanics (choice of runs, reading any format, table, fusion, failures), not accuracy."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from asclib import features, fusion, predict, profiles, train
from asclib.__main__ import main
from asclib.profiles import get_profile
from asclib.data import SCENES, AudioFormatWarning, load_audio

QUICK = get_profile("quick")
# The quick profile's audio and features (so real clips are converted as they would be) with
# tiny networks trained for one step: a few hundred milliseconds per run.
_TINY = profiles.tiny(QUICK, epochs=1)
TINY = dataclasses.replace(_TINY, train=dataclasses.replace(_TINY.train, steps_per_epoch=1, batch_size=4, seeds=(0,)))
RATE = QUICK.audio.sample_rate


def _data(n_classes: int) -> train.TrainingSet:
    rng = np.random.default_rng(n_classes)
    log_mels = rng.uniform(size=(8, QUICK.features.n_mels, features.frame_count(QUICK))).astype(np.float32)
    return train.TrainingSet(log_mels, rng.integers(0, n_classes, 8), f"random clips {n_classes}")


def _fit(name: str, n_classes: int, profile=TINY, seed: int = 0, **options) -> train.Run:
    return train.fit(name, n_classes, _data(n_classes), profile, seed, progress=False, **options)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder of three finished runs: ResNet and FCNN for 10 classes, FCNN for 3."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASC_RUNS_DIR", str(root))
        for name, n_classes in (("resnet", 10), ("fcnn", 10), ("fcnn", 3)):
            _fit(name, n_classes)
    return root / "quick"


@pytest.fixture
def recordings(tmp_path):
    """A stereo 22.05 kHz recording, a 6 s mono one at the profile's rate, a 1 s one, and files
    that cannot be classified: not audio, empty, missing."""
    rng = np.random.default_rng(3)
    stereo = tmp_path / "stereo-22k.wav"
    sf.write(stereo, rng.uniform(-0.3, 0.3, size=(5 * 22_050, 2)), 22_050, subtype="PCM_16")
    long = tmp_path / "long-16k.wav"
    sf.write(long, np.cumsum(rng.standard_normal(6 * RATE)) * 0.001, RATE, subtype="FLOAT")
    short = tmp_path / "short.wav"
    sf.write(short, rng.uniform(-0.3, 0.3, RATE), RATE)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF this is not audio at all")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), RATE)
    return {"stereo": stereo, "long": long, "short": short, "corrupt": corrupt, "empty": empty,
            "missing": tmp_path / "missing.wav"}


def test_runs_are_ordered_and_rebuilt_with_their_own_profile(runs):
    found = predict.find_runs([runs])
    assert [(run.name, run.n_classes) for run in found] == [("resnet", 10), ("fcnn", 10), ("fcnn", 3)]
    assert all(run.profile == TINY and run.finished and not run.model.training for run in found)


def test_recordings_of_any_format_keep_their_length_and_short_ones_are_padded(recordings):
    stereo, _ = sf.read(recordings["stereo"])
    with pytest.warns(AudioFormatWarning) as caught:
        audio = predict.read_recording(recordings["stereo"], TINY)
    assert ["down-mixed" in str(w.message) or "resampled to 16000" in str(w.message) for w in caught] == [True, True]
    expected = librosa.resample(stereo.mean(axis=1).astype(np.float32), orig_sr=22_050, target_sr=RATE, res_type="soxr_hq")
    assert np.allclose(audio, expected, atol=1e-6)
    assert len(predict.read_recording(recordings["long"], TINY)) == 6 * RATE
    with pytest.warns(UserWarning, match="padded with zeros"):
        short = predict.read_recording(recordings["short"], TINY)
    assert len(short) == predict.minimum_samples(TINY)
    assert predict.network_input(short, TINY).shape == (3, QUICK.features.n_mels, TINY.augment.crop_frames)
    # at the profile's own length, the features are exactly those of training
    with pytest.warns(AudioFormatWarning, match="trimmed"):
        clip = load_audio(recordings["long"], TINY)
    assert np.array_equal(predict.network_input(clip, TINY), features.extract(clip, TINY))


def test_classify_gives_one_row_per_readable_file_and_the_two_stage_fusion(runs, recordings):
    found = predict.find_runs([runs])
    files = [recordings[key] for key in ("stereo", "corrupt", "long", "empty", "short", "missing")]
    with pytest.warns(AudioFormatWarning):
        result = predict.classify(files, found)
    table = result.table
    assert list(table.columns) == predict.COLUMNS
    assert list(table["file"]) == [str(recordings[key]) for key in ("stereo", "long", "short")]
    assert set(result.failures) == {str(recordings[key]) for key in ("corrupt", "empty", "missing")}
    assert "cannot be read" in result.failures[str(recordings["corrupt"])]
    assert "no samples" in result.failures[str(recordings["empty"])]
    assert "not found" in result.failures[str(recordings["missing"])]
    scenes = table.set_index("file")[list(SCENES)].rename_axis("filename")
    assert np.allclose(scenes.sum(axis=1), 1)
    pd.testing.assert_frame_equal(scenes, fusion.two_stage(result.p10, result.p3).loc[scenes.index])
    assert list(table["scene"]) == list(scenes.idxmax(axis=1))
    assert np.allclose(table["scene probability"], scenes.max(axis=1))
    assert list(table["coarse"]) == list(result.p3.loc[scenes.index].idxmax(axis=1))
    # the 10-class ensemble is the mean of the two 10-class runs
    file = str(recordings["long"])
    x = torch.from_numpy(predict.network_input(predict.read_recording(file, TINY), TINY)[None])
    with torch.no_grad():
        mean = np.mean([torch.softmax(run.model(x), 1)[0].numpy() for run in found if run.n_classes == 10], axis=0)
    assert np.allclose(result.p10.loc[file], mean, atol=1e-6)


def test_several_runs_of_one_model_are_refused_unless_named(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_RUNS_DIR", str(tmp_path))
    other = _fit("fcnn", 10, seed=1).folder
    mixed = tmp_path / "quick"
    for folder in runs.iterdir():
        (mixed / folder.name).symlink_to(folder)
    with pytest.raises(ValueError, match=r"2 finished 10-class fcnn runs found: .*name the run folders"):
        predict.find_runs([mixed])
    named = [other, *(folder for folder in runs.iterdir() if folder.name.startswith("fcnn-10c")),
             *(folder for folder in runs.iterdir() if "-3c-" in folder.name)]
    assert [(run.name, run.n_classes) for run in predict.find_runs(named)] == [("fcnn", 10)] * 2 + [("fcnn", 3)]
    with pytest.raises(ValueError, match="at least one 10-class and one 3-class run"):
        predict.find_runs([other])


def test_unfinished_runs_are_skipped_in_a_folder_and_refused_when_named(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_RUNS_DIR", str(tmp_path))
    longer = profiles.resized(TINY, epochs={"resnet": 2})
    unfinished = _fit("resnet", 3, longer, stop_after=1).folder
    with pytest.raises(train.CheckpointError, match="has trained 1 of its 2 epochs"):
        predict.find_runs([runs, unfinished])
    mixed = tmp_path / "quick"
    for folder in runs.iterdir():
        (mixed / folder.name).symlink_to(folder)
    with pytest.warns(predict.RunSkippedWarning, match="skipped"):
        assert len(predict.find_runs([mixed])) == 3


def test_runs_of_another_profile_are_refused(runs):
    with pytest.raises(train.CheckpointError, match="quick profile with other models settings"):
        predict.find_runs([runs], profile=QUICK)
    with pytest.raises(train.CheckpointError, match="expected the paper profile"):
        predict.find_runs([runs], profile=get_profile("paper"))
    with pytest.raises(FileNotFoundError, match="neither a run folder"):
        predict.find_runs([runs / "nowhere"])


def test_the_command_line_prints_writes_csv_and_exits_1_on_a_bad_file(runs, recordings, tmp_path, capsys, real_clips):
    out = tmp_path / "tables" / "predictions.csv"
    files = [*map(str, real_clips), str(recordings["stereo"]), str(recordings["corrupt"])]
    assert main(["predict", *files, "--runs", str(runs), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"error: {recordings['corrupt']}: cannot be read as audio" in captured.err and "note:" in captured.err
    table = pd.read_csv(out)
    assert list(table.columns) == predict.COLUMNS and list(table["file"]) == files[:-1]
    assert np.allclose(table[list(SCENES)].sum(axis=1), 1, atol=1e-5)
    assert real_clips[0].name in captured.out
    assert main(["predict", str(recordings["long"]), "--runs", str(runs)]) == 0


def test_the_dcase_submission_file_has_the_columns_and_order_the_dcase_evaluation_reads(runs, recordings, tmp_path,
                                                                                       capsys):
    out = tmp_path / "submission.tsv"
    files = [str(recordings["long"]), str(recordings["stereo"])]
    assert main(["predict", *files, "--runs", str(runs), "--out", str(out), "--format", "dcase"]) == 0
    submission = pd.read_csv(out, sep="\t")
    # DCASE 2020 Task 1a: filename, scene_label, then the ten scenes in this (alphabetical) order
    dcase_2020 = ["airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall",
                  "street_pedestrian", "street_traffic", "tram"]
    assert list(submission.columns) == ["filename", "scene_label", *dcase_2020, "coarse_label"]
    assert list(submission["filename"]) == files
    assert (submission["scene_label"] == submission[dcase_2020].idxmax(axis=1)).all()
    assert np.allclose(submission[dcase_2020].sum(axis=1), 1, atol=1e-5)
    assert set(submission["coarse_label"]) <= {"indoor", "outdoor", "transportation"}
    assert main(["predict", *files, "--runs", str(runs), "--format", "dcase"]) != 0
    assert "--format dcase writes the submission file named by --out" in capsys.readouterr().err


def test_cam_figures_are_written_one_per_file_beside_the_table(runs, recordings, tmp_path):
    twin = tmp_path / "elsewhere" / recordings["long"].name  # same name, another folder
    twin.parent.mkdir()
    twin.symlink_to(recordings["long"])
    out = tmp_path / "out" / "table.csv"
    assert main(["predict", str(recordings["long"]), str(twin), "--runs", str(runs), "--out", str(out), "--cam"]) == 0
    assert sorted(path.name for path in out.parent.iterdir()) == ["long-16k-2.cam.png", "long-16k.cam.png", "table.csv"]
