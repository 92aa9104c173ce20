"""The embedded default: a synthetic corpus in the exact DCASE 2020 Task 1a layout (notebook 01).

`generate(out_dir, profile, seed)` plans cities, locations, segments and devices
(`plan_corpus`), renders each location's segments with `asclib.scenes`, records them through
the device chains of `asclib.devices`, and writes

    audio/<scene>-<city>-<location>-<segment>-<device>.wav
    meta.csv, evaluation_setup/fold1_{train,evaluate,test}.csv    (read by asclib.data)
    events.tsv     filename, onset, offset, event_label: every event of every clip
    corpus.json    what made the folder: profile sizes, seed and a hash of the synthesis code

The devices are those of the DCASE 2020 development set plus the evaluation-only s7-s11
(`asclib.devices`). The real development set has no s7-s11: `with_unseen_devices` joins it with
recordings of s7-s11 simulated from its device-A evaluation clips (the paper profile; notebook 12).

Everything is a pure function of (profile, seed): the same seed gives the same bytes. The
folder is written under a temporary name and renamed when complete; an existing folder made
with the same settings is reused, one made with other settings is replaced, and a folder that
was not made by this module (no corpus.json) is never touched.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from asclib import devices, kernels, microphones, scenes
from asclib.config import Profile, config_hash, paths
from asclib.data import DEVELOPMENT_DEVICES, DEVICES, META_FILE, MINOR_TRAINING_DEVICES, SCENES, SPLIT_FILES
from asclib.files import atomic_path, folder_is_current
from asclib.parallel import process_map

MANIFEST = "corpus.json"
EVENTS_FILE = "events.tsv"


def code_hash() -> str:
    """Hash of the synthesis code, so a corpus made by older code is regenerated."""
    digest = hashlib.sha256()
    for module in (scenes, devices, microphones):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:12]


def plan_corpus(profile: Profile, seed: int = 0) -> pd.DataFrame:
    """One row per clip to write: scene, city, location, segment, device, split.

    Per scene, `train_locations + evaluate_locations` locations are drawn in random cities;
    evaluation locations are never used for training.
    """
    config = profile.corpus
    rng = np.random.default_rng([seed, 0])
    rows, location_id, segment_id = [], 0, 0
    for scene in SCENES:
        n_locations = config.train_locations + config.evaluate_locations
        cities = rng.choice(config.cities, size=n_locations, replace=n_locations > len(config.cities))
        for k, city in enumerate(cities):
            split = "train" if k < config.train_locations else "evaluate"
            count, locations = ((config.train_segments, config.train_locations) if split == "train"
                                else (config.evaluate_segments, config.evaluate_locations))
            share = count // locations + (k % locations < count % locations)
            for _ in range(share):
                rows.append({"scene": scene, "city": str(city), "location_id": location_id,
                             "segment": segment_id, "split": split})
                segment_id += 1
            location_id += 1
    segments = pd.DataFrame(rows)
    clips = [segments.assign(device="a")]
    clips.append(segments[segments["split"] == "evaluate"].pipe(
        lambda s: pd.concat([s.assign(device=d) for d in DEVICES[1:]])))
    for scene in SCENES:  # distinct segments for each minor training device, like the real set
        pool = segments[(segments["scene"] == scene) & (segments["split"] == "train")]
        chosen = rng.permutation(pool.index.to_numpy())
        for k, device in enumerate(MINOR_TRAINING_DEVICES):
            picked = chosen[k * config.minor_segments:(k + 1) * config.minor_segments]
            clips.append(segments.loc[picked].assign(device=device))
    plan = pd.concat(clips, ignore_index=True)
    plan["filename"] = [f"audio/{r.scene}-{r.city}-{r.location_id}-{r.segment}-{r.device}.wav"
                        for r in plan.itertuples()]
    return plan.sort_values("filename", ignore_index=True)


def make_location(profile: Profile, seed: int, scene: str, location_id: int) -> scenes.Location:
    """The location `location_id` of the corpus made with `seed` (its rooms and variations)."""
    return scenes.make_location(scene, profile.audio.sample_rate, np.random.default_rng([seed, 1, location_id]))


def render_segment(profile: Profile, seed: int, location: scenes.Location, segment: int) -> scenes.Scene:
    """The sound field of segment `segment`, before any device: the same for all its recordings."""
    return scenes.render_scene(location, profile.audio.clip_seconds, profile.audio.sample_rate,
                               np.random.default_rng([seed, 2, segment]))


def record_segment(profile: Profile, seed: int, scene: scenes.Scene, segment: int, device: str) -> np.ndarray:
    """Device `device`'s recording of a rendered segment (`record_audio`)."""
    return record_audio(profile, scene.audio, device, np.random.default_rng([seed, 3, segment, DEVICES.index(device)]))


def record_audio(profile: Profile, audio: np.ndarray, device: str, rng: np.random.Generator) -> np.ndarray:
    """Device `device`'s recording of the sound `audio` (`devices.record`), float32, kept clear
    of clipping."""
    recorded = devices.record(audio, profile.audio.sample_rate, devices.DEVICE_CHAINS[device], rng)
    peak = np.abs(recorded).max()
    if peak > 0.99:  # as a recorder's input gain would
        recorded *= 0.99 / peak
    return recorded.astype(np.float32)


def _render_location(task: tuple) -> list[dict]:
    """Worker: render every segment of one location through its devices; returns event rows."""
    profile, seed, folder, scene_label, location_id, segments = task
    location = make_location(profile, seed, scene_label, location_id)
    event_rows = []
    for segment, clips in segments:
        scene = render_segment(profile, seed, location, segment)
        for filename, device in clips:
            sf.write(Path(folder) / filename, record_segment(profile, seed, scene, segment, device),
                     profile.audio.sample_rate, subtype=profile.audio.subtype)
            event_rows += [{"filename": filename, **event} for event in scene.events]
    return event_rows


def _settings(profile: Profile, seed: int) -> dict:
    return {"profile": profile.name, "seed": seed, "audio": config_hash(profile.audio),
            "corpus": config_hash(profile.corpus), "kernels": kernels.settings(), "code": code_hash()}


def generate(out_dir: str | Path, profile: Profile, seed: int = 0,
             workers: int | None = None) -> Path:
    """Write the synthetic corpus of `profile` into `out_dir` (reused if already made so)."""
    out_dir = Path(out_dir)
    settings = _settings(profile, seed)
    if folder_is_current(out_dir, settings, MANIFEST, "asclib.synth"):
        return out_dir

    plan = plan_corpus(profile, seed)
    with atomic_path(out_dir) as folder:
        (folder / "audio").mkdir(parents=True)
        (folder / "evaluation_setup").mkdir()
        tasks = [
            (profile, seed, str(folder), scene, int(location_id),
             [(int(segment), list(zip(clips["filename"], clips["device"])))
              for segment, clips in group.groupby("segment", sort=True)])
            for (scene, location_id), group in plan.groupby(["scene", "location_id"], sort=True)
        ]
        results = process_map(_render_location, tasks, workers, f"synthesising {len(plan)} clips", "location")
        _write_tables(folder, plan, [row for rows in results for row in rows])
        (folder / MANIFEST).write_text(json.dumps(
            {"settings": settings, "clips": len(plan), "note": "synthetic corpus made by asclib.synth"},
            indent=2) + "\n")
    return out_dir


def dataset(profile: Profile, data_dir: str | Path | None = None, seed: int = 0) -> Path:
    """The data folder a notebook works on: for `quick` by default the embedded corpus
    (generated on first use); a corpus made by `generate` as it is; any other folder (the real
    development set: the `paper` profile needs it) joined with simulated recordings of its
    evaluation-only devices s7-s11 (`with_unseen_devices`)."""
    if data_dir is None and profile.name != "quick":
        raise ValueError(f"profile {profile.name!r} needs data_dir: the folder of the real development set")
    if data_dir is None:
        return generate(paths(profile).data, profile, seed)
    data_dir = Path(data_dir)
    return data_dir if (data_dir / MANIFEST).is_file() else with_unseen_devices(data_dir, profile)


UNSEEN = DEVICES[len(DEVELOPMENT_DEVICES):]  # s7-s11
JOINED_MANIFEST = "joined.json"


def with_unseen_devices(data_dir: str | Path, profile: Profile, workers: int | None = None) -> Path:
    """The real development set in `data_dir` with the evaluation-only devices s7-s11 added, as
    the DCASE 2020 evaluation set had them (docs/spec.md section 10; notebook 12): a folder in the
    DCASE layout under the profile's cache whose `audio/` links to every clip of `data_dir` and
    holds, for every device-A evaluation clip, its recording through each chain of s7-s11
    (`record_audio`; each clip's generator seeded by its position and the device), and whose
    `meta.csv` and split files are `data_dir`'s plus those rows (evaluation). These recordings
    are simulated from device A, not measured: tables label s7-s11 as such. Reused while
    `data_dir`'s listing, the audio settings and the synthesis code are unchanged; `data_dir`
    itself is never written to."""
    from asclib.data import load_index

    data_dir = Path(data_dir).resolve()
    index = load_index(data_dir, profile)  # without the files `data.exclude_files` leaves out
    sources = index[(index["split"] == "evaluate") & (index["device"] == "a")].sort_values("filename")
    settings = {"source": str(data_dir), "listing": config_hash(sorted(index["filename"])),
                "audio": config_hash(profile.audio), "kernels": kernels.settings(), "code": code_hash()}
    out_dir = paths(profile).cache / "with-s7-s11" / config_hash(str(data_dir))
    if folder_is_current(out_dir, settings, JOINED_MANIFEST, "asclib.synth"):
        return out_dir
    added = pd.DataFrame([{"filename": f"{name.rsplit('-', 1)[0]}-{device}.wav", "source": path, "number": number,
                           "device": device, "scene_label": str(scene), "identifier": location}
                          for number, (name, path, scene, location) in
                          enumerate(sources[["filename", "path", "scene", "location"]].itertuples(index=False))
                          for device in UNSEEN],
                         columns=["filename", "source", "number", "device", "scene_label", "identifier"])
    with atomic_path(out_dir) as folder:
        (folder / "audio").mkdir(parents=True)
        (folder / "evaluation_setup").mkdir()
        for name in index["filename"]:
            (folder / name).symlink_to(data_dir / name)
        tasks = [(profile, str(folder), chunk.to_dict("records")) for _, chunk in added.groupby(added.index // 25)]
        process_map(_record_unseen, tasks, workers, f"simulating s7-s11 ({len(added)} clips)", "chunk")
        _join_tables(data_dir, folder, added)
        (folder / JOINED_MANIFEST).write_text(json.dumps(
            {"settings": settings, "clips": len(index) + len(added), "simulated": len(added),
             "note": "the data set in settings.source (linked) plus s7-s11 simulated from its device-A evaluation clips"},
            indent=2) + "\n")
    return out_dir


def _record_unseen(task: tuple) -> None:
    """Worker: record a chunk of device-A clips through their unseen devices, write them."""
    from asclib.data import load_audio

    profile, folder, rows = task
    for row in rows:
        audio = load_audio(row["source"], profile).astype(np.float64)
        rng = np.random.default_rng([23, row["number"], DEVICES.index(row["device"])])
        sf.write(Path(folder) / row["filename"], record_audio(profile, audio, row["device"], rng),
                 profile.audio.sample_rate, subtype=profile.audio.subtype)


def _join_tables(data_dir: Path, folder: Path, added: pd.DataFrame) -> None:
    """`data_dir`'s meta.csv and split files with the `added` rows (evaluation split) appended."""
    meta = pd.read_csv(data_dir / META_FILE, sep="\t")
    rows = added.rename(columns={"device": "source_label"})
    pd.concat([meta, rows[["filename", "scene_label", "identifier", "source_label"]]]).to_csv(
        folder / META_FILE, sep="\t", index=False)
    for split, file in SPLIT_FILES.items():
        table = pd.read_csv(data_dir / file, sep="\t")
        if split != "train":
            table = pd.concat([table, rows[list(table.columns)]])
        table.to_csv(folder / file, sep="\t", index=False)


def _write_tables(folder: Path, plan: pd.DataFrame, event_rows: list[dict]) -> None:
    meta = pd.DataFrame({
        "filename": plan["filename"], "scene_label": plan["scene"],
        "identifier": plan["city"] + "-" + plan["location_id"].astype(str), "source_label": plan["device"],
    })
    meta.to_csv(folder / "meta.csv", sep="\t", index=False)
    for split, name in (("train", "fold1_train.csv"), ("evaluate", "fold1_evaluate.csv")):
        rows = plan[plan["split"] == split]
        rows[["filename", "scene"]].rename(columns={"scene": "scene_label"}).to_csv(
            folder / "evaluation_setup" / name, sep="\t", index=False)
    plan.loc[plan["split"] == "evaluate", ["filename"]].to_csv(
        folder / "evaluation_setup" / "fold1_test.csv", sep="\t", index=False)
    events = pd.DataFrame(event_rows, columns=["filename", "onset", "offset", "event_label"])
    events.sort_values(["filename", "onset", "event_label"]).to_csv(
        folder / EVENTS_FILE, sep="\t", index=False, float_format="%.3f")
