"""How big each network is, in the DCASE way (notebooks 04-06, README): trainable parameters,
multiply-accumulates (MACs) to classify one 10-second clip, and the size of its parameters stored
in float32, float16 and int8, for every registered network in both profiles.

MACs are counted by torch's own `torch.utils.flop_counter.FlopCounterMode` on one forward pass of a
10-second input (3 x mel bands x frames of the profile's features), run on the `meta` device, so
nothing is computed: the counter takes a convolution or matrix product of k multiply-adds as 2k
FLOPs, and MACs are half its total. As in the DCASE baselines' counts, only convolutions and
matrix products count (BatchNorm, activations, pooling and element-wise products do not). A
size is parameters x bytes per parameter, in KiB (1024 bytes), the DCASE rules' unit.
The paper states neither parameters nor MACs; its authors' Keras code gives the trainable
parameter counts of the paper profile (`paper.CODE_PARAMETERS`), shown beside ours.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from asclib import architectures, features, models, paper
from asclib.config import Profile
from asclib.profiles import get_profile

CLIP_SECONDS = 10.0  # a DCASE clip
BYTES = {"float32": 4, "float16": 2, "int8": 1}


def input_shape(profile: Profile, seconds: float = CLIP_SECONDS) -> tuple[int, int, int]:
    """The network input of one clip of `seconds`: (3, mel bands, frames after the deltas)."""
    longer = dataclasses.replace(profile, audio=dataclasses.replace(profile.audio, clip_seconds=seconds))
    return 3, profile.features.n_mels, features.input_frames(longer)


def macs(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass of `model` (on the meta device) on an input of
    `shape` without its batch axis (module docstring)."""
    model = model.to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, *shape, device="meta"))
    return counter.get_total_flops() // 2


def row(name: str, n_classes: int, profile: Profile) -> dict:
    """The complexity of one network (module docstring) in `profile`."""
    with torch.device("meta"):
        model = architectures.build(name, n_classes, profile)
    parameters = models.count_parameters(model)
    return {"profile": profile.name, "network": f"{name}-{n_classes}c", "parameters": parameters,
            "MMACs per 10 s clip": round(macs(model, input_shape(profile)) / 1e6, 2),
            **{f"{precision} KiB": round(parameters * size / 1024, 1) for precision, size in BYTES.items()},
            f"parameters ({paper.CODE_LABEL})": paper.CODE_PARAMETERS.get((name, n_classes)) if profile.name == "paper" else None}


def table(names=None, profiles=("quick", "paper")) -> pd.DataFrame:
    """One row per network of `names` (default: every registered one) and class count its
    notebook trains, in each of `profiles`: parameters, MACs per 10-second clip, sizes."""
    chosen = [(name, n) for name, n in architectures.notebook_runs() if names is None or name in names]
    rows = pd.DataFrame([row(name, n, get_profile(profile)) for profile in profiles for name, n in chosen])
    reference = f"parameters ({paper.CODE_LABEL})"
    rows[reference] = rows[reference].astype("Int64")  # blank where the code gives none (the quick profile)
    return rows.set_index(["profile", "network"])
