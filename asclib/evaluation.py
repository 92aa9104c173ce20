"""Predictions of the evaluation split: computed with a trained model, and their accuracy per
device (notebooks 04-11).

A run's predictions are one row per evaluation clip: filename, device, the true label, then one
probability per class (`predict`); the committed runs keep theirs as float16 (`asclib.store`),
from which the ensembles and the two-stage fusion read them. `run_predictions` computes them
once per run folder and keeps them there (`PREDICTIONS`, with the key of the code and clips
that made them) for a run trained by a launched job (`launch`), and logs the run's accuracy by
device for TensorBoard (`curves`); `save_predictions` writes the copies notebooks 04-06 show
readers under `results/<profile>/predictions/`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asclib import curves, features, train
from asclib.config import Profile, config_hash, paths
from asclib.files import atomic_path, definitions_tree
from asclib.metrics import accuracy_by_device

PREDICTIONS = "evaluation.csv"  # a finished run's predictions of the evaluation split, in its folder
PREDICTIONS_KEY = "evaluation.key"  # beside it: `predictions_key` of the code and clips that made them


# With one thread torch hands a 1x1 convolution of fewer clips than this to MKL's sgemm, whose
# code path depends on the CPU's vendor (tests/test_vendor.py); a shorter batch is padded to it.
PORTABLE_BATCH = 16


@torch.no_grad()
def probabilities_of(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """The class probabilities of the network inputs `x` (clips, 3, mels, frames) under `model`
    (in eval mode), computed on at least `PORTABLE_BATCH` clips so that every CPU takes the same
    path: a short batch is padded with silent inputs, whose outputs are dropped."""
    n = len(x)
    if n < PORTABLE_BATCH:
        x = torch.cat([x, x.new_zeros((PORTABLE_BATCH - n, *x.shape[1:]))])
    return torch.softmax(model(x), dim=1)[:n].cpu().numpy()


@torch.no_grad()
def predict(model: torch.nn.Module, index: pd.DataFrame, n_classes: int, profile: Profile,
            batch_size: int = 64) -> pd.DataFrame:
    """Class probabilities of every clip of `index` (full length, no augmentation), one row per
    clip: filename, device, label (the true class), then one column per class."""
    device = next(model.parameters()).device
    log_mels = features.log_mel_rows(list(index["path"]), profile, progress=False)
    model.eval()
    probabilities = []
    for start in range(0, len(index), batch_size):
        x = torch.from_numpy(features.network_inputs(log_mels[start:start + batch_size])).to(device)
        probabilities.append(probabilities_of(model, x))
    table = pd.DataFrame(np.concatenate(probabilities), columns=train.classes_of(n_classes))
    table.insert(0, "label", index[train.target_column(n_classes)].astype(str).to_numpy())
    table.insert(0, "device", index["device"].astype(str).to_numpy())
    table.insert(0, "filename", index["filename"].to_numpy())
    return table


def accuracy(predictions: pd.DataFrame) -> pd.DataFrame:
    """Accuracy by device and group of a prediction table (argmax of the class columns)."""
    classes = [c for c in predictions.columns if c not in ("filename", "device", "label")]
    predicted = predictions[classes].to_numpy().argmax(axis=1)
    correct = np.array(classes)[predicted] == predictions["label"].to_numpy()
    return accuracy_by_device(pd.DataFrame({"device": predictions["device"], "correct": correct}))


def save_predictions(predictions: pd.DataFrame, name: str, profile: Profile) -> Path:
    """Write `results/<profile>/predictions/<name>.csv`: a run's predictions for readers and
    other tools (notebooks 04-06 write one per model and seed)."""
    return _write(predictions, paths(profile).results / "predictions" / f"{name}.csv")


def _write(predictions: pd.DataFrame, path: Path) -> Path:
    """Write a prediction table as CSV, atomically, probabilities to 6 decimals."""
    with atomic_path(path) as temporary:
        predictions.to_csv(temporary, index=False, float_format="%.6f")
    return path


def predictions_key(evaluation: pd.DataFrame, n_classes: int) -> str:
    """A hash of what a run's stored predictions depend on besides its weights: the prediction
    code (`predict`, `features.network_inputs`, the feature code) and the evaluation clips with
    their devices and labels, in order. Stored predictions with another key are made again."""
    import ast

    clips = evaluation[["filename", "device", train.target_column(n_classes)]].astype(str)
    return config_hash([ast.dump(definitions_tree(__file__, ["predict"])),
                        ast.dump(definitions_tree(features.__file__, ["network_inputs"])), features.code_hash(),
                        clips.to_numpy().tolist()])


def run_predictions(run: train.Run, index: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """The run's predictions of the evaluation split of `index` (`predict`), computed once and
    kept in its run folder (`PREDICTIONS`) with their key (`predictions_key`): stored predictions
    made by other code or of other clips, devices or labels are made again. They are computed
    with the training's CPU thread count, so that they are the same bytes whichever process
    makes them (a forked worker, a launched job, a notebook)."""
    evaluation = index[index["split"] == "evaluate"]
    path, key_file = run.folder / PREDICTIONS, run.folder / PREDICTIONS_KEY
    key = predictions_key(evaluation, run.n_classes)
    if path.is_file() and key_file.is_file() and key_file.read_text().strip() == key:
        return pd.read_csv(path)
    key_file.unlink(missing_ok=True)
    with train.torch_threads(train.TRAIN_THREADS):
        predictions = predict(run.model, evaluation, run.n_classes, profile)
    _write(predictions, path)
    with atomic_path(key_file) as temporary:
        temporary.write_text(key + "\n")
    curves.log_accuracy(run.folder, accuracy(predictions), len(run.history))
    return pd.read_csv(path)  # as stored (6 decimals): the same table whether made now or read back
