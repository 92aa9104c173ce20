"""Classifying new recordings with trained runs (`python -m asclib predict`).

Which models: `find_runs` reads the run folders written by `train.fit` (each holds
`checkpoint.pt`, which records the model, its class count and the whole profile it was trained
with), or the weights the committed runs keep (`asclib.store`: `results/<profile>/runs/*.pt`,
the same record without the training state). A location is one run folder or weights file, or
a folder of them such as `runs/quick/seed-0` (the models of notebooks 04-06 under training seed
0; the command line's default where it exists, else the committed weights, those of the same
runs).
Only finished runs (trained for all the epochs of their profile) are used; an unfinished run
found in a folder of runs is skipped with a warning, one named directly is refused. A model and
class count found more than once in a folder of runs (other seeds, augmentations or settings)
is refused with the list of candidates, so that nothing is picked silently: name the run
folders to use instead, and every run named directly is used. All runs must share one feature
configuration (one network input per recording), and there must be at least one 10-class and
one 3-class run.

How the decision is made: the 10-class ensemble is the mean of the 10-class runs'
probabilities, the 3-class ensemble likewise (`fusion.ensemble`), and the two-stage
probabilities are `fusion.two_stage` of the two, as in notebooks 07 and 08. The scene is the
argmax of the two-stage probabilities, the coarse class the argmax of the 3-class ensemble.

Recordings of any format: `data.load_audio`'s policy (channels averaged to mono, another rate
resampled with librosa's default, soxr "HQ", warnings naming the file) but the recording's whole
length is kept, since the networks are fully convolutional; a recording shorter than the
training crop (`profile.augment.crop_frames` network frames, 3.8 s in the quick profile, 9.5 s
in the paper's) is padded with zeros at the end up to it. The log-mel is scaled by its own
minimum and maximum over the whole recording, as a training clip's is.
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from asclib import architectures, evaluation, features, fusion, train
from asclib.config import Profile, config_hash
from asclib.data import COARSE_CLASSES, READ_ERRORS, SCENES, AudioError, AudioFormatWarning, load_audio

COLUMNS = ["file", "scene", "scene probability", "coarse", "coarse probability", *SCENES]  # of the table
# The DCASE submission format (Task 1, the baselines' `--evaluate` output): tab-separated, the
# file, the decided scene, one probability per scene in the DCASE 2020 order (SCENES), and here
# the coarse class of the two-stage system after them
DCASE_COLUMNS = ["filename", "scene_label", *SCENES, "coarse_label"]
FORMATS = ("table", "dcase")


@dataclass
class TrainedRun:
    """A run loaded for prediction: where it lives, what it is, its model and epochs trained."""

    folder: Path
    name: str
    n_classes: int
    profile: Profile
    model: torch.nn.Module
    epochs: int

    @property
    def finished(self) -> bool:
        return self.epochs >= self.profile.epochs(self.name)


@dataclass
class Prediction:
    """What `classify` returns: the table (one row per recording, in the order given), the
    filename-indexed ensembles it was made from, and the recordings that could not be read."""

    table: pd.DataFrame
    p10: pd.DataFrame
    p3: pd.DataFrame
    failures: dict[str, str]  # file -> reason


class RunSkippedWarning(UserWarning):
    """A run found in a folder of runs is not used (it has not finished training)."""


def stored_profile(state: dict, path: str | Path) -> Profile:
    """The profile a checkpoint was trained with, rebuilt from the plain dict `train` stores."""
    stored = state.get("profile")
    try:
        return Profile(**{name: stored[name] if kind is str else kind(**stored[name])
                          for name, kind in typing.get_type_hints(Profile).items()})
    except (TypeError, KeyError) as error:
        raise train.CheckpointError(f"{path} does not record the profile it was trained with ({error!r}): it was "
                                    "written by an older asclib; delete its run folder and train again") from None


def _check_profile(run: TrainedRun, expected: Profile, sections: tuple[str, ...]) -> None:
    """Refuse a run whose profile differs from `expected` in name or in one of `sections`
    ("models": the run's own architecture's sizes only)."""
    def key(profile: Profile, section: str) -> str:
        if section == "models":
            return profile.size_key(run.name, run.n_classes)
        return config_hash(getattr(profile, section))

    differing = [s for s in sections if key(run.profile, s) != key(expected, s)]
    if run.profile.name != expected.name or differing:
        other = f" with other {', '.join(differing)} settings" if differing else ""
        raise train.CheckpointError(f"{run.folder} was trained with the {run.profile.name} profile{other}; "
                                    f"expected the {expected.name} profile's")


def load_run(folder: Path) -> TrainedRun:
    """A run folder's network (or a committed run's weights file), loaded from its checkpoint with
    the profile it was trained with."""
    path = folder if folder.is_file() else folder / train.CHECKPOINT
    state = train.read_checkpoint(path)
    profile = stored_profile(state, path)
    name, n_classes = state["metadata"]["name"], state["metadata"]["classes"]
    model = architectures.build(name, n_classes, profile)
    model.load_state_dict(state["model"])
    return TrainedRun(folder, name, n_classes, profile, model.eval(), state["epoch"])


def run_folders(locations) -> tuple[list[Path], list[Path]]:
    """The run folders of `locations` (run folders themselves, or folders of run folders): those
    named directly and those found inside the others, each in order (`find_runs`, `export`)."""
    named, scanned = [], []
    for location in map(Path, locations):
        if (location / train.CHECKPOINT).is_file() or (location.is_file() and location.suffix == ".pt"):
            named.append(location)
        elif location.is_dir():
            folders = sorted(f for f in location.iterdir() if (f / train.CHECKPOINT).is_file() or f.suffix == ".pt")
            if not folders:
                raise FileNotFoundError(f"{location}: no run folders in it (folders holding {train.CHECKPOINT}) and no "
                                        "committed weights (*.pt); train first (python -m asclib train) or name run folders")
            scanned.extend(folders)
        else:
            raise FileNotFoundError(f"{location}: neither a run folder (holding {train.CHECKPOINT}), a committed run's "
                                    "weights (*.pt), nor a folder of them")
    return named, scanned


def find_runs(locations, profile: Profile | None = None) -> list[TrainedRun]:
    """The finished runs to predict with, from run folders and folders of runs (module
    docstring), ordered 10 classes first, then ResNet, FCNN, fsFCNN, then by folder. `profile`
    (optional) refuses runs of any other profile."""
    named, scanned = run_folders(locations)
    runs = []
    for folder in dict.fromkeys(named):
        run = load_run(folder)
        if not run.finished:
            raise train.CheckpointError(f"{folder} has trained {run.epochs} of its "
                                        f"{run.profile.epochs(run.name)} epochs: finish it or leave it out")
        runs.append(run)
    for folder in dict.fromkeys(f for f in scanned if f not in named):
        run = load_run(folder)
        if run.finished:
            runs.append(run)
        else:
            warnings.warn(f"{folder} skipped: it has trained {run.epochs} of its "
                          f"{run.profile.epochs(run.name)} epochs", RunSkippedWarning, stacklevel=2)
    _check_choice(runs, set(named), profile)
    order = list(architectures.REGISTRY)
    return sorted(runs, key=lambda run: (-run.n_classes, order.index(run.name), str(run.folder)))


def _check_choice(runs: list[TrainedRun], named: set[Path], profile: Profile | None) -> None:
    """Refuse an ambiguous or incomplete choice of runs, or runs of different features or profiles."""
    for key in sorted({(run.name, run.n_classes) for run in runs}):
        same = [run.folder for run in runs if (run.name, run.n_classes) == key]
        if len(same) > 1 and not set(same) <= named:
            raise ValueError(f"{len(same)} finished {key[1]}-class {key[0]} runs found: "
                             f"{', '.join(map(str, same))}; name the run folders to use with --runs "
                             "(every run named is used)")
    for n_classes in architectures.CLASS_COUNTS:
        if not any(run.n_classes == n_classes for run in runs):
            raise ValueError(f"no finished {n_classes}-class run among {len(runs)} found: the two-stage "
                             "fusion needs at least one 10-class and one 3-class run")
    for run in runs:
        _check_profile(run, runs[0].profile, ("audio", "features"))
        if profile is not None:
            _check_profile(run, profile, ("audio", "features", "models"))


def _of_length(profile: Profile, n_samples: int) -> Profile:
    """`profile` with clips of `n_samples` samples: the features of a recording of any length."""
    audio = profile.audio
    return dataclasses.replace(profile, audio=dataclasses.replace(audio, clip_seconds=n_samples / audio.sample_rate))


def minimum_samples(profile: Profile) -> int:
    """Samples of the shortest recording used as it is: the one whose network input has as many
    frames as the training crop."""
    return (profile.augment.crop_frames + 2 * features.EDGE_FRAMES - 1) * profile.features.hop_length


def read_recording(path: str | Path, profile: Profile) -> np.ndarray:
    """A recording as mono float32 at the profile's rate, at its full length (module docstring);
    `AudioError` when it is missing, unreadable or empty."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
    except READ_ERRORS as error:
        raise AudioError(f"{path}: cannot be read as audio ({error})") from None
    # the length librosa.resample gives (ceil of length x ratio), so load_audio neither pads nor trims
    length = int(np.ceil(info.frames * (float(profile.audio.sample_rate) / info.samplerate)))
    return load_audio(path, _of_length(profile, max(length, minimum_samples(profile))))


def network_input(audio: np.ndarray, profile: Profile) -> np.ndarray:
    """The network input of a recording of any length: (3, mel bands, frames - 8)."""
    return features.extract(audio, _of_length(profile, len(audio)))


@torch.no_grad()
def classify(files, runs: list[TrainedRun]) -> Prediction:
    """Classify each recording of `files` with `runs` (from `find_runs`): table columns file,
    scene, scene probability (two-stage), coarse, coarse probability (3-class ensemble), then
    the two-stage probability of each scene. A recording that cannot be read is left out of the
    table and listed in `failures` with the reason."""
    profile = runs[0].profile
    probabilities = {run.folder: {} for run in runs}
    failures = {}
    for file in dict.fromkeys(map(str, files)):
        try:
            x = torch.from_numpy(network_input(read_recording(file, profile), profile)[None])
        except AudioError as error:
            failures[file] = str(error)
            continue
        for run in runs:
            probabilities[run.folder][file] = evaluation.probabilities_of(run.model, x)[0]
    done = [file for file in dict.fromkeys(map(str, files)) if file not in failures]
    if not done:
        return Prediction(pd.DataFrame(columns=COLUMNS), _table({}, SCENES), _table({}, COARSE_CLASSES), failures)
    p10, p3 = (fusion.ensemble([_table(probabilities[run.folder], train.classes_of(n_classes))
                                for run in runs if run.n_classes == n_classes]) for n_classes in (10, 3))
    fused = fusion.two_stage(p10, p3).loc[done]
    table = pd.DataFrame({"file": done, "scene": fusion.decisions(fused).to_numpy(),
                          "scene probability": fused.max(axis=1).to_numpy(),
                          "coarse": fusion.decisions(p3).loc[done].to_numpy(),
                          "coarse probability": p3.max(axis=1).loc[done].to_numpy(),
                          **{scene: fused[scene].to_numpy() for scene in SCENES}})
    return Prediction(table, p10, p3, failures)


def dcase_submission(table: pd.DataFrame) -> pd.DataFrame:
    """`classify`'s table in the DCASE submission format (`DCASE_COLUMNS`): the file as given,
    the two-stage decision and probabilities, and the 3-class ensemble's coarse class."""
    return pd.DataFrame({"filename": table["file"], "scene_label": table["scene"],
                         **{scene: table[scene] for scene in SCENES}, "coarse_label": table["coarse"]})[DCASE_COLUMNS]


def _table(rows: dict[str, np.ndarray], classes) -> pd.DataFrame:
    """A filename-indexed probability table (`fusion`'s form) of one run."""
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(classes), dtype=float).rename_axis("filename")


def save_cams(prediction: Prediction, runs: list[TrainedRun], folder: str | Path) -> list[Path]:
    """One PNG per classified recording, `<folder>/<file stem>.cam.png`: its log-mel with the map
    of the first 10-class run for the decided scene and of the first 3-class run for the decided
    coarse class (first in `find_runs`'s order: the ResNet when there is one), by each model's
    default method (`cam.default_method`: CAM for the ResNet, Grad-CAM for the FCNNs)."""
    import matplotlib.pyplot as plt

    from asclib import cam, plots
    from asclib.files import atomic_path

    profile, written = runs[0].profile, []
    first = {n: next(run for run in runs if run.n_classes == n) for n in architectures.CLASS_COUNTS}
    for file, scene, coarse in prediction.table[["file", "scene", "coarse"]].itertuples(index=False):
        with warnings.catch_warnings():  # `classify` reported the conversions already
            warnings.simplefilter("ignore", AudioFormatWarning)
            inputs = network_input(read_recording(file, profile), profile)
        panels = {f"{first[n].name}, {n} classes: {cam.default_method(first[n].model)} of {label}":
                  cam.maps(first[n].model, inputs[None], classes=train.classes_of(n).index(label))[0]
                  for n, label in ((10, scene), (3, coarse))}
        figure = plots.cam_figure(inputs[0], panels, profile, title=f"{Path(file).name}: {scene} ({coarse})")
        path = _unused(Path(folder) / f"{Path(file).stem}.cam.png", written)
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
        plt.close(figure)
        written.append(path)
    return written


def _unused(path: Path, taken: list[Path]) -> Path:
    """`path`, or `<stem>-2`, `-3`, ... when a recording of the same name already took it."""
    candidate, count = path, 1
    while candidate in taken:
        count += 1
        candidate = path.with_name(path.name.replace(".cam.png", f"-{count}.cam.png"))
    return candidate


def command(files, locations, profile: Profile | None = None, out: str | Path | None = None,
            cam_folder: str | Path | None = None, output_format: str = "table") -> int:
    """`python -m asclib predict`: print the table, write it to `out` and the CAM figures to
    `cam_folder` when given; `output_format` "table" writes `out` as CSV (`COLUMNS`), "dcase" as
    the DCASE submission file (tab-separated, `dcase_submission`). Conversions and skipped runs
    are noted on stderr, each unreadable recording reported there. Exit status 1 when a
    recording failed, else 0."""
    import sys

    from asclib.files import atomic_path

    if output_format not in FORMATS:
        raise ValueError(f"output format {output_format!r} (--format): expected one of {FORMATS}")
    if output_format == "dcase" and out is None:
        raise ValueError("--format dcase writes the submission file named by --out: give --out FILE.tsv")

    with warnings.catch_warnings():
        for category in (AudioFormatWarning, RunSkippedWarning):
            warnings.simplefilter("always", category)
        warnings.showwarning = lambda message, *_, **__: print(f"note: {message}", file=sys.stderr)
        runs = find_runs(locations, profile)
        print(f"{len(runs)} runs of the {runs[0].profile.name} profile: "
              + ", ".join(f"{run.name}-{run.n_classes}c ({run.folder.name})" for run in runs), file=sys.stderr)
        prediction = classify(files, runs)
    for reason in prediction.failures.values():  # each names its file
        print(f"error: {reason}", file=sys.stderr)
    if len(prediction.table):
        print(prediction.table.to_string(index=False, float_format=lambda value: f"{value:.3f}"))
    if out is not None:
        written = dcase_submission(prediction.table) if output_format == "dcase" else prediction.table
        with atomic_path(out) as temporary:
            written.to_csv(temporary, index=False, float_format="%.6f", sep="\t" if output_format == "dcase" else ",")
    if cam_folder is not None:
        save_cams(prediction, runs, cam_folder)
    return 1 if prediction.failures else 0
