"""Reading a dataset in the DCASE 2020 Task 1a development layout (notebook 01).

The layout, for the real TAU Urban Acoustic Scenes 2020 Mobile set and for the embedded
synthetic corpus alike::

    <data_dir>/audio/<scene>-<city>-<location>-<segment>-<device>.wav
    <data_dir>/meta.csv                        filename, scene_label, identifier, source_label
    <data_dir>/evaluation_setup/fold1_train.csv      filename, scene_label
    <data_dir>/evaluation_setup/fold1_evaluate.csv   filename, scene_label
    <data_dir>/evaluation_setup/fold1_test.csv       filename

All csv files are tab-separated with a header; CRLF line endings are accepted.
`load_index` turns them into one pandas DataFrame, one row per clip; `load_audio` reads a clip
at the profile's rate and length. Anything unexpected raises `DatasetError` or `AudioError`
naming the file and what was expected. `check_dataset` reads the header of every listed clip
before any long work (`python -m asclib reproduce` runs it first) and reports every problem at
once; the bad files it finds can be left out of every later `load_index` (`exclude_files`).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from asclib.config import AudioConfig, Profile, paths
from asclib.files import atomic_path

SCENES = (
    "airport", "bus", "metro", "metro_station", "park", "public_square",
    "shopping_mall", "street_pedestrian", "street_traffic", "tram",
)
COARSE_CLASSES = ("indoor", "outdoor", "transportation")
COARSE_OF = {
    "airport": "indoor", "metro_station": "indoor", "shopping_mall": "indoor",
    "park": "outdoor", "public_square": "outdoor",
    "street_pedestrian": "outdoor", "street_traffic": "outdoor",
    "bus": "transportation", "metro": "transportation", "tram": "transportation",
}
DEVICES = ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11")
# the development set's devices: "overall" accuracies are over these, as in the paper; s7-s11
# (evaluation only, unseen microphones: asclib.devices) are reported beside them
DEVELOPMENT_DEVICES = DEVICES[:9]
DEVICE_GROUPS = ("A", "B&C", "s1-s3", "s4-s6", "s7-s11")
MINOR_TRAINING_DEVICES = ("b", "c", "s1", "s2", "s3")  # in training besides A, about 5 % each
GROUP_OF = {"a": "A", "b": "B&C", "c": "B&C", "s1": "s1-s3", "s2": "s1-s3", "s3": "s1-s3",
            "s4": "s4-s6", "s5": "s4-s6", "s6": "s4-s6",
            "s7": "s7-s11", "s8": "s7-s11", "s9": "s7-s11", "s10": "s7-s11", "s11": "s7-s11"}
SPLITS = ("train", "evaluate", "unused")

META_FILE = "meta.csv"
SPLIT_FILES = {
    "train": "evaluation_setup/fold1_train.csv",
    "evaluate": "evaluation_setup/fold1_evaluate.csv",
    "test": "evaluation_setup/fold1_test.csv",
}
META_ARCHIVE_HINT = (
    "the dataset's meta archive (TAU-urban-acoustic-scenes-2020-mobile-development.meta.zip "
    "for the real set) must be unpacked into the dataset folder, next to audio/"
)
_SHOW = 5  # how many offending names an error message lists
READ_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError)  # what soundfile raises on a bad file


class DatasetError(ValueError):
    """The dataset folder or one of its csv files is not what the DCASE layout requires."""


class AudioError(ValueError):
    """A clip cannot be read or is unusable (unreadable, empty)."""


class AudioFormatWarning(UserWarning):
    """A clip was readable but had to be adapted (resampled, down-mixed, padded or trimmed)."""


class BadFilesWarning(UserWarning):
    """`check_dataset(..., skip_bad=True)` found unusable files, which are left out."""


def listing(names) -> str:
    """Names for an error message: the first few, then how many more (`fusion`, `released` too)."""
    names = list(names)
    shown = ", ".join(str(n) for n in names[:_SHOW])
    return shown + (f", ... ({len(names) - _SHOW} more)" if len(names) > _SHOW else "")


def parse_filename(filename: str) -> dict:
    """Split `audio/<scene>-<city>-<location>-<segment>-<device>[_<augmentation>].wav` into fields.

    The optional `_<augmentation>` suffix marks clips made by `asclib.augment` (e.g. `a_noise`).
    """
    stem = Path(filename).stem
    parts = stem.split("-")
    if len(parts) != 5 or not filename.endswith(".wav"):
        raise DatasetError(
            f"file name {filename!r} does not follow "
            "'<scene>-<city>-<location>-<segment>-<device>.wav'"
        )
    scene, city, location, segment, device = parts
    device = device.partition("_")[0]
    if device not in DEVICES:
        raise DatasetError(f"file name {filename!r}: unknown device {device!r}, expected one of {DEVICES}")
    return {"scene": scene, "city": city, "location": f"{city}-{location}",
            "segment": segment, "device": device}


def read_table(path: Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    """Read a tab-separated csv with a header, strip CRLF and check its columns."""
    if not path.is_file():
        raise DatasetError(f"{what} not found: {path}; {META_ARCHIVE_HINT}")
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\r", "\n")
    try:
        table = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DatasetError(f"{path}: not a tab-separated table with a header ({error})") from None
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {missing}; expected tab-separated columns {list(columns)}, "
            f"found {list(table.columns)}"
        )
    return table[list(columns)].apply(lambda column: column.str.strip())


def _check_scenes(table: pd.DataFrame, path: Path) -> None:
    unknown = table.loc[~table["scene_label"].isin(SCENES)]
    if len(unknown):
        raise DatasetError(
            f"{path}: {len(unknown)} row(s) with an unknown scene label "
            f"({listing(sorted(set(unknown['scene_label'])))}); expected one of {SCENES}"
        )


def _parse_all(filenames) -> pd.DataFrame:
    return pd.DataFrame([parse_filename(name) for name in filenames],
                        columns=["scene", "city", "location", "segment", "device"])


def read_split(path: str | Path) -> pd.DataFrame:
    """Read one fold-1 split file: filename, scene (where given) and the fields of the name."""
    path = Path(path)
    has_labels = not path.name.endswith("_test.csv")
    table = read_table(path, ("filename", "scene_label") if has_labels else ("filename",),
                        f"split file {path.name}")
    if has_labels:
        _check_scenes(table, path)
    fields = _parse_all(table["filename"])
    if has_labels:
        wrong = table["scene_label"].to_numpy() != fields["scene"].to_numpy()
        if wrong.any():
            raise DatasetError(f"{path}: scene label disagrees with the file name for "
                               f"{wrong.sum()} row(s): {listing(table['filename'][wrong])}")
        table = table.rename(columns={"scene_label": "scene"})
    fields = fields.drop(columns="scene")
    split = pd.concat([table.reset_index(drop=True), fields], axis=1)
    duplicated = split["filename"][split["filename"].duplicated()]
    if len(duplicated):
        raise DatasetError(f"{path}: {len(duplicated)} duplicated file name(s): {listing(duplicated)}")
    return split


def _read_meta(data_dir: Path) -> pd.DataFrame:
    path = data_dir / META_FILE
    meta = read_table(path, ("filename", "scene_label", "identifier", "source_label"), META_FILE)
    _check_scenes(meta, path)
    fields = _parse_all(meta["filename"])
    for column, field in (("scene_label", "scene"), ("identifier", "location"), ("source_label", "device")):
        wrong = meta[column].to_numpy() != fields[field].to_numpy()
        if wrong.any():
            raise DatasetError(f"{path}: column {column} disagrees with the file name for "
                               f"{wrong.sum()} row(s): {listing(meta['filename'][wrong])}")
    duplicated = meta["filename"][meta["filename"].duplicated()]
    if len(duplicated):
        raise DatasetError(f"{path}: {len(duplicated)} duplicated file name(s): {listing(duplicated)}")
    return pd.concat([meta[["filename"]], fields], axis=1)


def load_index(data_dir: str | Path | None, profile: Profile,
               exclude=None) -> pd.DataFrame:
    """One row per clip of the dataset in `data_dir` (default: the profile's data folder).

    Columns: filename (as in the csv files, `audio/...wav`), path, scene, coarse, device,
    device_group, city, location, segment, split (train / evaluate / unused). Scenes, coarse
    classes, devices and groups are ordered categoricals in the reference's class order.
    `exclude` lists file names (`audio/...wav`) to leave out; by default, those of the CSV file
    named by the environment variable ASC_EXCLUDED_FILES, if set (see `exclude_files`).
    Names that are not in the dataset are ignored.
    """
    data_dir = Path(data_dir) if data_dir is not None else paths(profile).data
    index = read_layout(data_dir)
    index = index[~index["filename"].isin(_excluded() if exclude is None else set(exclude))]
    on_disk = {f"audio/{p.name}" for p in (data_dir / "audio").glob("*.wav")}
    absent = index["filename"][~index["filename"].isin(on_disk)]
    if len(absent):
        raise DatasetError(f"{data_dir / 'audio'}: {len(absent)} of {len(index)} file(s) listed in "
                           f"{META_FILE} are missing on disk: {listing(absent)}")
    return index.reset_index(drop=True)


def read_layout(data_dir: str | Path) -> pd.DataFrame:
    """The index of `load_index` from the csv files alone: every listed clip, no audio file looked at."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(
            f"dataset folder not found: {data_dir}; expected a folder in the DCASE 2020 Task 1a "
            "layout (audio/, meta.csv, evaluation_setup/). For the quick profile, create it with "
            "asclib.synth.generate; for the paper profile, pass the folder of the real data set"
        )
    missing = [name for name in (META_FILE, *SPLIT_FILES.values()) if not (data_dir / name).is_file()]
    if missing:
        raise DatasetError(f"{data_dir}: missing {', '.join(missing)}; {META_ARCHIVE_HINT}")
    index = _read_meta(data_dir)
    splits = {name: read_split(data_dir / file) for name, file in SPLIT_FILES.items()}

    known = set(index["filename"])
    for name, split in splits.items():
        unknown = split["filename"][~split["filename"].isin(known)]
        if len(unknown):
            raise DatasetError(f"{data_dir / SPLIT_FILES[name]}: {len(unknown)} file(s) not listed in "
                               f"{META_FILE}: {listing(unknown)}")
    both = set(splits["train"]["filename"]) & set(splits["evaluate"]["filename"])
    if both:
        raise DatasetError(f"{data_dir}: {len(both)} file(s) are in both fold1_train.csv and "
                           f"fold1_evaluate.csv: {listing(sorted(both))}")
    if set(splits["test"]["filename"]) != set(splits["evaluate"]["filename"]):
        raise DatasetError(f"{data_dir}: fold1_test.csv and fold1_evaluate.csv must list the same files")

    index["split"] = "unused"
    index.loc[index["filename"].isin(splits["train"]["filename"]), "split"] = "train"
    index.loc[index["filename"].isin(splits["evaluate"]["filename"]), "split"] = "evaluate"
    index["path"] = [str(data_dir / name) for name in index["filename"]]
    index["coarse"] = index["scene"].map(COARSE_OF)
    index["device_group"] = index["device"].map(GROUP_OF)
    return _with_categories(index)[
        ["filename", "path", "scene", "coarse", "device", "device_group",
         "city", "location", "segment", "split"]
    ]


def check_dataset(data_dir: str | Path | None, profile: Profile,
                  skip_bad: bool = False, progress: bool = True) -> pd.DataFrame:
    """Check every clip listed in `data_dir`'s meta.csv from its header, before any long work:
    present, readable, mono, at the profile's sample rate and clip length (a clip that is not
    would be resampled, down-mixed, padded or trimmed by `load_audio`, file by file, hours later).

    Returns one row per problem: filename, split, problem (missing, unreadable, sample rate,
    channels, length), found, expected; empty when every clip is sound. Problems raise one
    `DatasetError` that reports them all (a count per kind and the first lines). With `skip_bad`
    they are only warned about (`BadFilesWarning`) and the caller leaves the files out:
    `load_index(..., exclude=problems["filename"])`, or `exclude_files` for the notebooks.
    `python -m asclib reproduce` runs it first; its `--skip-bad-files` sets `skip_bad`.
    """
    from tqdm.auto import tqdm

    data_dir = Path(data_dir) if data_dir is not None else paths(profile).data
    index = read_layout(data_dir)
    listed = zip(index["filename"], index["split"].astype(str), index["path"])
    rows = [(filename, split, *problem)
            for filename, split, path in tqdm(listed, total=len(index), desc="checking the dataset", unit="file",
                                              disable=not progress, leave=False)
            for problem in clip_problems(Path(path), profile.audio)]
    problems = pd.DataFrame(rows, columns=["filename", "split", "problem", "found", "expected"])
    if problems.empty:
        return problems
    report = _problem_report(problems, len(index), data_dir, profile)
    if not skip_bad:
        raise DatasetError(f"{report}\nReplace these files, or leave them out with --skip-bad-files "
                           "(check_dataset(..., skip_bad=True)).")
    warnings.warn(f"{report}\nThese files are left out.", BadFilesWarning, stacklevel=2)
    return problems


def clip_problems(path: Path, audio: AudioConfig) -> list[tuple[str, str, str]]:
    """What keeps the clip at `path` from being read as it is, from its header alone:
    (problem, found, expected) for each problem; empty for a sound clip."""
    if not path.is_file():
        return [("missing", "no file", "a wav file")]
    try:
        with sf.SoundFile(path) as clip:
            rate, channels, frames = clip.samplerate, clip.channels, clip.frames
    except READ_ERRORS as error:
        return [("unreadable", getattr(error, "error_string", str(error)), "a wav file")]
    problems = []
    if rate != audio.sample_rate:
        problems.append(("sample rate", f"{rate} Hz", f"{audio.sample_rate} Hz"))
    if channels != 1:
        problems.append(("channels", str(channels), "1 (mono)"))
    expected = round(audio.clip_seconds * rate)
    if frames != expected:
        problems.append(("length", f"{frames} samples ({frames / rate:g} s)",
                         f"{expected} samples ({audio.clip_seconds:g} s)"))
    return problems


_REPORT_LINES = 20  # problem lines a check report shows; the counts cover the rest


def _problem_report(problems: pd.DataFrame, listed: int, data_dir: Path, profile: Profile) -> str:
    audio = profile.audio
    counts = problems.groupby("problem", sort=False)["filename"].nunique()
    lines = [f"{data_dir}: {problems['filename'].nunique()} of {listed} listed file(s) cannot be read as the "
             f"{profile.name} profile expects (mono wav, {audio.sample_rate} Hz, {audio.clip_seconds:g} s):",
             "  " + ", ".join(f"{kind}: {count} file(s)" for kind, count in counts.items()),
             problems.head(_REPORT_LINES).to_string(index=False)]
    if len(problems) > _REPORT_LINES:
        lines.append(f"... and {len(problems) - _REPORT_LINES} more problem(s)")
    if problems["filename"].nunique() == listed:
        lines.append(f"No listed file fits: is this the data set of the {profile.name} profile?")
    return "\n".join(lines)


EXCLUDED_FILES_VARIABLE = "ASC_EXCLUDED_FILES"


def exclude_files(problems: pd.DataFrame, path: str | Path) -> Path | None:
    """Leave the files of `problems` (from `check_dataset`) out of every later `load_index` of this
    process and of the processes it starts (notebook kernels, training workers): write them to
    `path` (CSV) and point the environment variable ASC_EXCLUDED_FILES at it. With no problems,
    `path` is removed and the variable unset. `python -m asclib reproduce` calls it with
    `results/<profile>/excluded_files.csv`, so the results record which clips were left out."""
    path = Path(path)
    if problems.empty:
        path.unlink(missing_ok=True)
        os.environ.pop(EXCLUDED_FILES_VARIABLE, None)
        return None
    with atomic_path(path) as temporary:
        problems.to_csv(temporary, index=False)
    os.environ[EXCLUDED_FILES_VARIABLE] = str(path.resolve())
    return path


def _excluded() -> set[str]:
    """The file names listed by ASC_EXCLUDED_FILES (none when it is unset)."""
    value = os.environ.get(EXCLUDED_FILES_VARIABLE)
    if not value:
        return set()
    try:
        return set(pd.read_csv(value, dtype=str)["filename"])
    except (OSError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DatasetError(f"{EXCLUDED_FILES_VARIABLE}={value}: cannot read the files to leave out ({error!r}); "
                           "expected a CSV file with a filename column, as asclib.data.exclude_files writes") from None


def recording_stems(filenames: pd.Series) -> pd.Series:
    """Each file name without its device suffix: parallel recordings of a segment share it."""
    return filenames.str.rsplit("-", n=1).str[0]


def parallel_pairs(index: pd.DataFrame, device: str) -> pd.DataFrame:
    """Paths of the device-A and `device` recordings of the same segments: one row per segment
    (indexed by stem, sorted), columns "a" and `device`; empty when there are none."""
    stems = recording_stems(index["filename"])
    paths_of = {d: pd.Series(index["path"].to_numpy()[mask], index=stems[mask].to_numpy())
                for d in ("a", device) for mask in [(index["device"] == d).to_numpy()]}
    return pd.concat(paths_of, axis=1, join="inner").sort_index()


def load_events(data_dir: str | Path, missing_ok: bool = False) -> pd.DataFrame:
    """The sound events of every clip (synthetic corpus only): filename, onset, offset, event_label.

    Times are in seconds from the start of the clip; `offset` is the end of the dry sound. A
    folder without an event list (the real development set has none) is an error, or with
    `missing_ok` an empty table (notebook 10 then skips what needs the events).
    """
    path = Path(data_dir) / "events.tsv"
    if not path.is_file() and missing_ok:
        return pd.DataFrame({"filename": pd.Series(dtype=str), "onset": pd.Series(dtype=float),
                             "offset": pd.Series(dtype=float), "event_label": pd.Series(dtype=str)})
    if not path.is_file():
        raise DatasetError(f"event list not found: {path}; only the synthetic corpus "
                           "(asclib.synth) records where its sound events are")
    events = pd.read_csv(path, sep="\t", dtype={"filename": str, "event_label": str})
    missing = {"filename", "onset", "offset", "event_label"} - set(events.columns)
    if missing:
        raise DatasetError(f"{path}: missing column(s) {sorted(missing)}")
    return events


def _with_categories(table: pd.DataFrame) -> pd.DataFrame:
    for column, values in (("scene", SCENES), ("coarse", COARSE_CLASSES), ("device", DEVICES),
                           ("device_group", DEVICE_GROUPS), ("split", SPLITS)):
        if column in table:
            table[column] = pd.Categorical(table[column], categories=values, ordered=True)
    return table


def load_audio(path: str | Path, profile: Profile) -> np.ndarray:
    """Read a clip as mono float32 at the profile's sample rate and exact clip length.

    Policy for clips that do not match the profile (each with an `AudioFormatWarning` naming the
    file): several channels are averaged to mono, another sample rate is resampled, a short clip
    is padded with zeros at the end and a long one keeps its first `clip_seconds`. A missing,
    unreadable or empty file, or one with NaN or infinite samples, raises `AudioError`.
    """
    audio_config = profile.audio
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        samples, rate = sf.read(path, dtype="float32", always_2d=True)
    except READ_ERRORS as error:
        raise AudioError(f"{path}: cannot be read as audio ({error})") from None
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: contains no samples (empty audio file)")
    bad = ~np.isfinite(samples)
    if bad.any():
        raise AudioError(f"{path}: {bad.sum()} NaN or infinite sample(s); the file is corrupt")
    if samples.shape[1] > 1:
        warnings.warn(f"{path}: {samples.shape[1]} channels, down-mixed to mono", AudioFormatWarning,
                      stacklevel=2)
    if samples.shape[1] == 1:  # what the mean computes (0 + x, so -0.0 becomes 0.0), 1 ms faster per clip
        audio = samples[:, 0] + np.float32(0)
    else:
        audio = samples.mean(axis=1, dtype=np.float32)
    if rate != audio_config.sample_rate:
        import librosa  # imported late: its first use compiles with numba (slow)

        warnings.warn(f"{path}: sample rate {rate} Hz, resampled to {audio_config.sample_rate} Hz",
                      AudioFormatWarning, stacklevel=2)
        audio = librosa.resample(audio, orig_sr=rate, target_sr=audio_config.sample_rate)
    expected = audio_config.n_samples
    if len(audio) != expected:
        action = "padded with zeros" if len(audio) < expected else "trimmed"
        warnings.warn(f"{path}: {len(audio)} samples where {expected} were expected "
                      f"({audio_config.clip_seconds:g} s at {audio_config.sample_rate} Hz), {action}",
                      AudioFormatWarning, stacklevel=2)
        audio = np.pad(audio, (0, max(0, expected - len(audio))))[:expected]
    return np.ascontiguousarray(audio, dtype=np.float32)
