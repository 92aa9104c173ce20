"""A deliberately simple baseline that calibrates the corpus's difficulty (notebook 01).

Logistic regression on each clip's mean log-mel spectrum (time-averaged, after the per-clip
min-max of `asclib.features.log_mel`). It sees the long-term spectrum and nothing else, so it
tells how far a single global feature gets: on a corpus that behaves like acoustic scenes it
should be well above chance, well below 100 %, and lower on the unseen devices s4-s6.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from asclib.config import Profile
from asclib.data import load_audio
from asclib.features import log_mel
from asclib.metrics import accuracy_by_device


def mean_log_mel(index: pd.DataFrame, profile: Profile) -> np.ndarray:
    """(clips, n_mels): the time-averaged scaled log-mel spectrum of every clip in `index`."""
    from tqdm.auto import tqdm

    return np.stack([log_mel(load_audio(path, profile), profile).mean(axis=1)
                     for path in tqdm(index["path"], desc="mean log-mel", unit="clip")])


def logistic_baseline(index: pd.DataFrame, features: np.ndarray, target: str = "scene",
                      seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit on the training split, predict the evaluation split, from `mean_log_mel` features.

    Returns (per-clip predictions, accuracy table by device) for `target` "scene" or "coarse".
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = (index["split"] == "train").to_numpy()
    evaluate = (index["split"] == "evaluate").to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000, random_state=seed))
    model.fit(features[train], index.loc[train, target].astype(str))
    predictions = index.loc[evaluate, ["filename", "device", "device_group", target]].copy()
    predictions["predicted"] = model.predict(features[evaluate])
    predictions["correct"] = predictions["predicted"] == predictions[target].astype(str)
    return predictions, accuracy_by_device(predictions)
