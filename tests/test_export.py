"""A trained network exported as ONNX (asclib.export) gives PyTorch's scores under onnxruntime, on
synthetic inputs and on real clips prepared by the feature code alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asclib import data, export, features, predict
from asclib.__main__ import main
from test_predict import runs  # noqa: F401  (fixture: a folder of three tiny finished runs)


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("exports")
    assert main(["export", "--onnx", "--runs", str(runs), "--out", str(out)]) == 0
    return out


def torch_scores(run: predict.TrainedRun, inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(run.model(torch.from_numpy(inputs)), dim=1).numpy()


def onnx_probabilities(path, inputs: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(export.onnx_scores(path, inputs)), dim=1).numpy()


def test_every_run_is_exported_with_what_its_input_needs(runs, exported):  # noqa: F811
    folders = predict.run_folders([runs])[1]
    assert sorted(p.name for p in exported.glob("*.onnx")) == sorted(f"{f.name}.onnx" for f in folders)
    run = predict.load_run(folders[0])
    description = json.loads((exported / f"{folders[0].name}.json").read_text())
    assert description["input"]["shape"] == ["clips", 3, run.profile.features.n_mels, features.input_frames(run.profile)]
    assert description["features"]["n_mels"] == run.profile.features.n_mels and description["profile"] == "quick"
    assert len(description["classes"]) == run.n_classes


def test_onnxruntime_gives_pytorchs_scores_on_synthetic_inputs(runs, exported):  # noqa: F811
    for folder in predict.run_folders([runs])[1]:
        run = predict.load_run(folder)
        shape = (5, 3, run.profile.features.n_mels, features.input_frames(run.profile))
        inputs = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
        assert np.abs(onnx_probabilities(exported / f"{folder.name}.onnx", inputs) - torch_scores(run, inputs)).max() < 1e-4


def test_onnxruntime_gives_pytorchs_scores_on_real_clips_read_by_the_feature_code(runs, exported, real_clips):  # noqa: F811
    for folder in predict.run_folders([runs])[1]:
        run = predict.load_run(folder)
        inputs = np.stack([features.extract(data.load_audio(clip, run.profile), run.profile) for clip in real_clips])
        assert np.abs(onnx_probabilities(exported / f"{folder.name}.onnx", inputs) - torch_scores(run, inputs)).max() < 1e-4


def test_export_needs_a_format_and_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["export", "--runs", str(tmp_path)]) == 2
    assert "--onnx" in capsys.readouterr().err
    assert main(["export", "--onnx", "--runs", str(tmp_path / "absent")]) == 2
    assert "neither a run folder" in capsys.readouterr().err
    assert main(["export", "--onnx", "--runs", str(tmp_path)]) == 2
    assert "no run folders in it" in capsys.readouterr().err
