"""A trained network for inference outside PyTorch: `python -m asclib export --onnx` (docs/running.md).

`export_onnx(run, folder)` writes `<run folder name>.onnx`, the network as ONNX (input `features`,
(clips, 3, mel bands, frames) float32; output `logits`, one per class), and beside it
`<run folder name>.json`, what a reader needs to prepare its input with the feature code
(`asclib.features.extract` on audio read by `asclib.data.load_audio`) and to name its outputs:
the profile's name, its audio and feature settings, the input's shape and the class names. The
batch axis is free; the frame axis is fixed to the profile's clip length (a 10-second clip in
the paper profile), since torch's exporter (`torch.onnx.export`, the torch.export-based one)
does not finish on a free frame axis of these networks; `load_audio` cuts or pads a recording to
that length. `onnx_scores` runs a file with onnxruntime on the CPU (tests/test_export.py: the
same scores as PyTorch).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from asclib import features, train
from asclib.files import atomic_path
from asclib.predict import TrainedRun, load_run, run_folders

INPUT, OUTPUT = "features", "logits"


def export_onnx(run: TrainedRun, folder: str | Path) -> Path:
    """Write `run`'s network and its description to `folder` (module docstring); returns the .onnx path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    profile = run.profile
    shape = (3, profile.features.n_mels, features.input_frames(profile))
    example = torch.zeros(2, *shape)
    path = folder / f"{run.folder.name}.onnx"
    with atomic_path(path) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on operators it did not need
        torch.onnx.export(run.model.eval(), (example,), str(temporary), input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_shapes=({0: torch.export.Dim("clips", max=4096)},), dynamo=True,
                          external_data=False, verbose=False)
    description = {"network": run.name, "classes": list(train.classes_of(run.n_classes)), "profile": profile.name,
                   "audio": dataclasses.asdict(profile.audio), "features": dataclasses.asdict(profile.features),
                   "input": {"name": INPUT, "shape": ["clips", *shape]}, "output": OUTPUT,
                   "run": str(run.folder), "epochs": run.epochs}
    with atomic_path(path.with_suffix(".json")) as temporary:
        temporary.write_text(json.dumps(description, indent=2) + "\n")
    return path


def onnx_scores(path: str | Path, inputs: np.ndarray) -> np.ndarray:
    """The logits of an exported network (`export_onnx`) for `inputs` (clips, 3, mel bands,
    frames), computed by onnxruntime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: np.ascontiguousarray(inputs, dtype=np.float32)})[0]


def command(locations, out: str | Path) -> list[Path]:
    """`python -m asclib export --onnx`: export every finished run of `locations` to `out`;
    an unfinished run is refused before anything is written."""
    named, scanned = run_folders(locations)
    runs = [load_run(folder) for folder in dict.fromkeys(named + scanned)]
    unfinished = [f"{run.folder} ({run.epochs} epochs trained)" for run in runs if not run.finished]
    if unfinished:
        raise ValueError(f"unfinished runs cannot be exported: {', '.join(unfinished)}; finish them or leave them out")
    written = []
    for run in runs:
        written.append(export_onnx(run, out))
        print(f"{run.folder.name} -> {written[-1]} (+ .json)")
    return written
