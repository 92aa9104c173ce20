"""The paper's nine augmentations (section 2.3; docs/spec.md sections 5.2 and 6) and those that came
after it, as data: one registry, `METHODS` (notebooks 03, 04-06, 09, 12; every entry is listed in
docs/library.md, "The registries").

Each `Method` has a name, a kind and a stable seed id. A recipe is a list of method names: the
notebooks' models have theirs in `asclib.architectures`, the rows of Table 3 theirs in
`asclib.ablation`, so registering a method adds it to no recipe. `split(recipe)` parts a recipe
into its online and its offline methods.

Online, on batches of features, implemented once, in torch on the training device
(`asclib.batches`): `mixup`, `random_crop` (every recipe has both: a training step mixes two
halves and crops them), `spec_augment` and methods from after the paper (`freq_mixstyle`). The reference's
three draw their random numbers from the run's generator in the reference's order
(`batches.draw`), so their seed ids name them without seeding anything; a method added later
draws from a generator of its own, seeded by the run's seed, its seed id and the step
(`batches.own_generator`), so that it never moves the draws of the others.

Offline, as new clips, each clip's generator seeded by the method's seed id:
`spectrum_correction`, `reverb_drc`, `pitch_shift`, `speed_change`, `noise`, `mix_audio` and
methods from after the paper, such as `dir` (device impulse responses, `asclib.microphones`), which makes several
copies of each device-A clip (`substitute_copies` of the profile), each through another
microphone; a training step reads one of them in place of the clip with a probability instead
of adding them to the training set (`substitutes`). `generate_offline(index, profile, method, seed)` writes one method's clips as a
folder in the DCASE layout (`audio/<clip>_<method>.wav`, `meta.csv`, `evaluation_setup/`, all
rows in the training split) plus `provenance.csv` (filename, source, method, parameters, seed);
`load_augmented` reads those folders back as extra training rows. Augmented names are unique
and are always loaded by full path (the reference's loader resolved augmented rows to the
original files, docs/spec.md section 12.2 item 3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy import signal

from asclib import features, kernels, microphones
from asclib.compand import Compander, compand
from asclib.config import Profile, config_hash, paths
from asclib.data import MINOR_TRAINING_DEVICES, load_audio, load_index, parallel_pairs
from asclib.files import atomic_path, code_tree, folder_is_current
from asclib.parallel import process_map

# --------------------------------------------------------------------------------------------
# Offline augmentations: each takes (audio, sr, rng, context) and returns (audio, parameters)

# SoX compand transfer curves of the reference's "mardy" family (docs/spec.md section 6.2): (points, gain dB)
DRC_SETS = (
    Compander(((-90, -70), (-60, -40), (0, 0)), 2),
    Compander(((-70, -60), (-20, -10), (0, 0)), 2),
    Compander(((-90, -70), (-35, -20), (0, 0)), 5),
    Compander(((-90, -60), (-60, -20), (0, 0)), 1),
    Compander(((-80, -50), (-50, -20), (0, 0)), 1),
)
DRC_FALLBACK = Compander(((-90, -80), (-30, -20), (0, 0)), -3)


def _stft(audio: np.ndarray, profile: Profile) -> np.ndarray:
    import librosa

    f = profile.features
    return librosa.stft(audio, n_fft=f.n_fft, hop_length=f.hop_length, window="hann", center=True,
                        pad_mode="reflect")


def correction_coefficients(index: pd.DataFrame, profile: Profile, seed: int = 0) -> np.ndarray:
    """Per-STFT-bin correction towards the average non-A training device (paper section 2.3).

    For parallel training recordings (device A and one of b, c, s1, s2, s3 of the same segment),
    the magnitude ratio |STFT_device| / |STFT_A| is averaged over frames and over up to
    `correction_pairs_per_device` pairs of every device, all devices pooled. (The reference code
    meant to do this but, through a counter reset, used device s3 only: docs/spec.md section 6.1.)
    """
    train = index[index["split"] == "train"]
    rng = np.random.default_rng([seed, 11])
    ratios = []
    for device in MINOR_TRAINING_DEVICES:
        pairs = parallel_pairs(train, device)
        if pairs.empty:
            continue
        chosen = rng.permutation(len(pairs))[: profile.augment.correction_pairs_per_device]
        for a_path, device_path in pairs.iloc[np.sort(chosen)].itertuples(index=False):
            device_mag = np.abs(_stft(load_audio(device_path, profile), profile))
            a_mag = np.abs(_stft(load_audio(a_path, profile), profile))
            ratios.append((device_mag / np.maximum(a_mag, 1e-10)).mean(axis=1))
    if not ratios:
        raise ValueError("spectrum correction needs parallel training recordings of device A and "
                         f"at least one of {MINOR_TRAINING_DEVICES}; this index has none")
    return np.mean(ratios, axis=0)


def spectrum_correction(audio, sr, rng, context):
    """Scale every STFT bin of a device-A clip by the correction coefficient, keep the phase.

    The waveform (an inverse STFT) is a listenable rendering only: the clip's features are
    `corrected_log_mel`, computed from the corrected magnitudes as the reference does (spec
    6.1 step 5); re-extracting them from this waveform would move the log-mels (about 1 dB at
    the 95th percentile on a real clip)."""
    import librosa

    profile, coefficients = context["profile"], context["coefficients"]
    spectrum = _stft(audio, profile) * coefficients[:, None]
    corrected = librosa.istft(spectrum, hop_length=profile.features.hop_length, window="hann",
                              center=True, length=len(audio))
    return corrected, {}


def corrected_log_mel(audio: np.ndarray, context: dict) -> np.ndarray:
    """The log-mel of a device-A clip whose power spectrum is scaled by the squared coefficients."""
    profile = context["profile"]
    gains = (context["coefficients"] ** 2).astype(np.float32)[:, None]
    return features.log_mel_of_power(features.power(audio, profile) * gains, profile)


def rir_bank(profile: Profile, seed: int = 0) -> list[np.ndarray]:
    """Room impulse responses from small rooms to large halls (rt60 about 0.2 to 2 s), cached.

    Room size and reverberation time grow together along a log scale, so every room can reach
    its rt60; each response is trimmed to 60 dB of decay plus a margin.
    """
    from asclib.scenes import shoebox_rirs

    count, sr = profile.augment.rir_count, profile.audio.sample_rate
    key = config_hash({"count": count, "sr": sr, "seed": seed, "version": 1})
    path = paths(profile).cache / "rirs" / f"{key}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return [stored[f"rir{k}"] for k in range(count)]
    rng = np.random.default_rng([seed, 12])
    small, large = np.array([3.0, 2.5, 2.4]), np.array([45.0, 30.0, 14.0])
    rirs, rt60s = [], []
    for k in range(count):
        t = (k + rng.uniform()) / count
        dims = small * (large / small) ** t
        rt60 = 0.2 * 10 ** t * rng.uniform(0.9, 1.1)
        rir = shoebox_rirs(dims, rt60, (1.0, 0.3 * dims[:2].min() + 1.0), sr, rng, sources=1)[0]
        rirs.append(rir[: int((rt60 * 1.2 + 0.05) * sr)])
        rt60s.append(rt60)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, rt60=np.array(rt60s), **{f"rir{k}": r for k, r in enumerate(rirs)})
    return rirs


def reverb_drc(audio, sr, rng, context):
    """Convolve with a random room, direct path at time 0, then a random SoX-style compander.

    As the reference: the output is cut to the input length and peak-normalised below 1 if
    the reverberant clip reaches full scale; if the compander clips, the fallback set is used.
    """
    rirs = context["rirs"]
    which = int(rng.integers(len(rirs)))
    rir = rirs[which]
    peak = int(np.argmax(np.abs(rir)))
    wet = signal.fftconvolve(audio, rir)[peak:peak + len(audio)]
    if np.abs(wet).max() >= 1:
        wet *= 0.99 / np.abs(wet).max()
    drc = int(rng.integers(len(DRC_SETS)))
    out = compand(wet, sr, DRC_SETS[drc])
    if np.abs(out).max() > 1:
        out, drc = compand(wet, sr, DRC_FALLBACK), -1
    return out, {"rir": which, "drc_set": drc}


def pitch_shift(audio, sr, rng, context):
    """librosa pitch shift by a continuous number of semitones, uniform in [-4, 4]."""
    import librosa

    steps = float(rng.uniform(-4, 4))
    return librosa.effects.pitch_shift(audio, sr=sr, n_steps=steps, bins_per_octave=12), {"semitones": steps}


def speed_change(audio, sr, rng, context):
    """Phase-vocoder tempo change (pitch kept), rate uniform in [0.5, 2]; tiled or cut to length."""
    import librosa

    rate = float(rng.uniform(0.5, 2.0))
    stretched = librosa.effects.time_stretch(audio, rate=rate)
    return np.tile(stretched, int(np.ceil(len(audio) / len(stretched))))[: len(audio)], {"rate": rate}


def noise(audio, sr, rng, context):
    """Gaussian noise of standard deviation 0.01 added to every non-zero sample."""
    return audio + (audio != 0) * rng.normal(0.0, 0.01, size=len(audio)), {"std": 0.01}


def mix_audio(audio, sr, rng, context):
    """Mix with another training clip of the same scene (any device), weights uniform in [0.5, 1]."""
    partners = context["same_scene"][context["scene"]]
    partner = partners[partners != context["source"]]
    chosen = str(rng.choice(partner))
    a, b = rng.uniform(0.5, 1.0, size=2)
    return a * audio + b * load_audio(chosen, context["profile"]), {"partner": Path(chosen).name,
                                                                   "weights": [float(a), float(b)]}


def device_impulse_response(audio, sr, rng, context):
    """Device impulse response (DIR) augmentation (Morocutti et al., EUSIPCO 2023): copies of
    the clip, each through another microphone of the training pool (`asclib.microphones`), drawn
    uniformly without replacement, `substitute_copies` of the profile; same length, same rms
    (`microphones.convolve`). Returns a list of (audio, parameters), one per copy."""
    count = context["profile"].augment.substitute_copies
    chosen = rng.choice(len(context["microphones"]), size=count, replace=False)
    return [(microphones.convolve(audio, microphones.response(context["microphones"][k], sr)),
             {"microphone": context["microphones"][k], "copy": copy}) for copy, k in enumerate(chosen)]


def _correction_context(index: pd.DataFrame, profile: Profile, seed: int) -> dict:
    return {"coefficients": correction_coefficients(index, profile, seed)}


def _rooms_context(index: pd.DataFrame, profile: Profile, seed: int) -> dict:
    return {"rirs": rir_bank(profile, seed)}


def _microphones_context(index: pd.DataFrame, profile: Profile, seed: int) -> dict:
    return {"microphones": microphones.training_pool()}


def _partners_context(index: pd.DataFrame, profile: Profile, seed: int) -> dict:
    train = index[index["split"] == "train"]
    return {"same_scene": {str(s): g["path"].to_numpy() for s, g in train.groupby("scene", observed=True)}}


# --------------------------------------------------------------------------------------------
# The registry

KINDS = ("online", "offline")


@dataclass(frozen=True)
class Method:
    """One augmentation (module docstring). Offline methods carry their code: `function`
    (audio, sr, rng, context) -> (audio, parameters); `context` (index, profile, seed) -> what
    every clip needs (coefficients, rooms, partners), made once; `log_mel` (audio, context) ->
    the clip's features when they are not taken from its waveform. A method that `substitutes`
    makes several copies of a clip (its function returns a list of them) and does not add them
    to the training set: a training step reads one of a clip's copies in place of the clip, with
    the probability its profile sets (`asclib.batches.LaterMethods`)."""

    name: str
    kind: str  # "online" or "offline"
    seed_id: int  # stable: never reuse or change one (module docstring)
    description: str  # as notebook 03 and docs/library.md name it
    function: object = None
    device_a_only: bool = False  # the reference applied it to device-A training clips only
    context: object = None
    log_mel: object = None
    substitutes: bool = False


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add `method` to the registry, refusing a name or seed id already taken or an offline method
    without its function."""
    if method.kind not in KINDS:
        raise ValueError(f"kind={method.kind!r} of {method.name!r}: expected one of {KINDS}")
    if method.name in METHODS:
        raise ValueError(f"augmentation {method.name!r} is registered already")
    taken = {entry.seed_id: entry.name for entry in METHODS.values()}
    if method.seed_id in taken:
        raise ValueError(f"seed id {method.seed_id} of {method.name!r} belongs to {taken[method.seed_id]!r}")
    if method.kind == "offline" and method.function is None:
        raise ValueError(f"offline augmentation {method.name!r} has no function")
    METHODS[method.name] = method
    return method


def names(kind: str) -> tuple[str, ...]:
    """The registered methods of `kind` ("online" or "offline"), in registration order."""
    return tuple(name for name, method in METHODS.items() if method.kind == kind)


def training_online(recipe) -> tuple[str, ...]:
    """The online methods of a training recipe (`split`), checked: a training step always mixes
    and crops its batches (`asclib.batches`), so every recipe names mixup and random_crop."""
    online, _ = split(recipe)
    if not {"mixup", "random_crop"} <= set(online):
        raise ValueError(f"augmentations {tuple(recipe)}: a training step always mixes and crops its batches, "
                         "so a recipe must name mixup and random_crop")
    return online


def split(recipe) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(online, offline) methods of `recipe` (method names), each in registration order; an
    unknown name is refused."""
    unknown = [name for name in recipe if name not in METHODS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {', '.join(map(repr, unknown))}: expected names from {tuple(METHODS)}")
    return tuple(tuple(name for name in names(kind) if name in recipe) for kind in KINDS)


register(Method("mixup", "online", 6, "mixup of two clips and their targets, Beta(0.4, 0.4)"))
register(Method("random_crop", "online", 7, "random crop in time"))
register(Method("spec_augment", "online", 8, "SpecAugment: one frequency band and one time span masked"))
register(Method("spectrum_correction", "offline", 0, "spectrum correction towards the other devices",
                spectrum_correction, device_a_only=True, context=_correction_context, log_mel=corrected_log_mel))
register(Method("reverb_drc", "offline", 1, "reverberation and dynamic range compression", reverb_drc,
                device_a_only=True, context=_rooms_context))
register(Method("pitch_shift", "offline", 2, "pitch shift", pitch_shift))
register(Method("speed_change", "offline", 3, "speed change", speed_change))
register(Method("noise", "offline", 4, "Gaussian noise", noise))
register(Method("mix_audio", "offline", 5, "mixing with a clip of the same scene", mix_audio, context=_partners_context))
# after the paper: in no recipe of notebooks 04-06; Table 3's extra rows (asclib.ablation)
register(Method("dir", "offline", 9, "device impulse response: a device-A clip through a microphone of the training pool",
                device_impulse_response, device_a_only=True, context=_microphones_context, substitutes=True))
register(Method("freq_mixstyle", "online", 10, "Freq-MixStyle: per-band statistics mixed between clips"))
MANIFEST = "augmentation.json"


def apply(method: str, audio: np.ndarray, sr: int, rng: np.random.Generator, context: dict) -> list[tuple]:
    """The clips offline `method` makes of `audio`: a list of (audio, parameters), one item, or
    one per copy for a substituting method (`dir`)."""
    made = METHODS[method].function(audio, sr, rng, context)
    return made if METHODS[method].substitutes else [made]


def _sources(index: pd.DataFrame, method: str) -> pd.DataFrame:
    sources = index[index["split"] == "train"]
    if METHODS[method].device_a_only:
        sources = sources[sources["device"] == "a"]
    return sources.reset_index(drop=True)


def _context(index: pd.DataFrame, profile: Profile, method: str, seed: int) -> dict:
    made = METHODS[method].context
    return {"profile": profile, **(made(index, profile, seed) if made is not None else {})}


_WORKER_CONTEXT: dict = {}


def _set_worker_context(context: dict) -> None:
    """Worker initialiser: receive the method's shared context (coefficients, rooms) once."""
    _WORKER_CONTEXT.update(context)


def _augment_chunk(task: tuple) -> list[dict]:
    """Worker: augment a chunk of clips, write them, return their provenance rows."""
    method, folder, seed, rows = task
    context = _WORKER_CONTEXT
    profile = context["profile"]
    sr = profile.audio.sample_rate
    provenance = []
    for number, source, path, scene in rows:
        rng = np.random.default_rng([seed, 13, METHODS[method].seed_id, number])
        audio = load_audio(path, profile).astype(np.float64)
        copies = apply(method, audio, sr, rng, {**context, "source": path, "scene": scene})
        for copy, (out, parameters) in enumerate(copies):
            peak = np.abs(out).max()
            if peak > 0.99:  # features are min-max scaled per clip, so this scale changes nothing
                out = out * (0.99 / peak)
            name = f"audio/{Path(source).stem}_{method}{copy if METHODS[method].substitutes else ''}.wav"
            sf.write(Path(folder) / name, out.astype(np.float32), sr, subtype=profile.audio.subtype)
            if METHODS[method].log_mel is not None:
                carried = features.carried_file(Path(folder) / name, profile)
                carried.parent.mkdir(parents=True, exist_ok=True)
                np.save(carried, METHODS[method].log_mel(audio, context))
            provenance.append({"filename": name, "source": source, "method": method,
                               "parameters": json.dumps(parameters, sort_keys=True), "seed": seed})
    return provenance


def generate_offline(index: pd.DataFrame, profile: Profile, method: str, seed: int = 0,
                     out_dir: str | Path | None = None, workers: int | None = None) -> Path:
    """Write `method`'s augmented copies of the training clips of `index`; reused when current."""
    if method not in names("offline"):
        raise ValueError(f"unknown offline augmentation {method!r}: expected one of {names('offline')}")
    out_dir = Path(out_dir) if out_dir is not None else paths(profile).augmented / method
    sources = _sources(index, method)
    settings = {"method": method, "seed": seed, "audio": config_hash(profile.audio),
                "augment": config_hash(profile.augment),
                "sources": config_hash(sorted(sources["filename"])), "kernels": kernels.settings(),
                "code": _code_hash(method)}
    if METHODS[method].log_mel is not None:  # its carried log-mels belong to one feature configuration and code
        settings["log_mels"] = features.cache_folder(profile).name
    if folder_is_current(out_dir, settings, MANIFEST, "asclib.augment"):
        return out_dir
    context = _context(index, profile, method, seed)
    rows = [(number, row.filename, row.path, str(row.scene)) for number, row in enumerate(sources.itertuples())]
    chunks = [rows[k:k + 25] for k in range(0, len(rows), 25)]
    with atomic_path(out_dir) as folder:
        (folder / "audio").mkdir(parents=True)
        (folder / "evaluation_setup").mkdir()
        tasks = [(method, str(folder), seed, chunk) for chunk in chunks]
        results = process_map(_augment_chunk, tasks, workers, f"{method} ({len(rows)} clips)", "chunk",
                              initializer=_set_worker_context, initargs=(context,))
        provenance = pd.DataFrame([row for chunk in results for row in chunk])
        _write_layout(folder, provenance, sources)
        provenance.to_csv(folder / "provenance.csv", index=False)
        (folder / MANIFEST).write_text(json.dumps({"settings": settings, "clips": len(provenance)}, indent=2) + "\n")
    return out_dir


def _write_layout(folder: Path, provenance: pd.DataFrame, sources: pd.DataFrame) -> None:
    """meta.csv and fold-1 files, so that asclib.data reads the folder like any data set."""
    source = sources.set_index("filename").loc[provenance["source"]]
    meta = pd.DataFrame({"filename": provenance["filename"].to_numpy(), "scene_label": source["scene"].astype(str).to_numpy(),
                         "identifier": source["location"].to_numpy(), "source_label": source["device"].astype(str).to_numpy()})
    meta.to_csv(folder / "meta.csv", sep="\t", index=False)
    meta[["filename", "scene_label"]].to_csv(folder / "evaluation_setup" / "fold1_train.csv", sep="\t", index=False)
    meta[["filename", "scene_label"]].iloc[:0].to_csv(folder / "evaluation_setup" / "fold1_evaluate.csv", sep="\t", index=False)
    meta[["filename"]].iloc[:0].to_csv(folder / "evaluation_setup" / "fold1_test.csv", sep="\t", index=False)


def _code_hash(method: str) -> str:
    """A hash of the code that makes `method`'s clips: this module without its docstrings, the
    registrations and the other methods' own functions (their `function`, `context`, `log_mel`),
    plus the method's registry fields and the compander. Registering or changing another method
    leaves `method`'s clips current, so no other table's runs are trained again."""
    import ast

    from asclib import compand as compand_module

    def parts(entry: Method) -> set[str]:
        return {part.__name__ for part in (entry.function, entry.context, entry.log_mel) if part is not None}

    entry = METHODS[method]
    others = set().union(*(parts(other) for other in METHODS.values() if other is not entry)) - parts(entry)
    tree = code_tree(__file__)
    tree.body = [node for node in tree.body
                 if not (isinstance(node, ast.FunctionDef) and node.name in others)
                 and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                          and getattr(node.value.func, "id", None) == "register")]
    fields = {"name": entry.name, "kind": entry.kind, "seed_id": entry.seed_id, "device_a_only": entry.device_a_only}
    used = [compand_module] + ([microphones] if entry.name == "dir" else [])
    return config_hash([ast.dump(tree), *(ast.dump(code_tree(module.__file__)) for module in used), fields])


def load_augmented(profile: Profile, methods, root: str | Path | None = None) -> pd.DataFrame:
    """Index rows (as `asclib.data.load_index`) of the augmented clips of `methods`, with their
    provenance columns (source, method, parameters). Each method's folder must exist."""
    root = Path(root) if root is not None else paths(profile).augmented
    tables = []
    for method in methods:
        folder = root / method
        if not (folder / MANIFEST).is_file():
            raise FileNotFoundError(f"augmented set {folder} not found: generate it first with "
                                    f"asclib.augment.generate_offline(index, profile, {method!r}) (notebook 03)")
        rows = load_index(folder, profile)
        provenance = pd.read_csv(folder / "provenance.csv")
        tables.append(rows.merge(provenance[["filename", "source", "method", "parameters"]], on="filename"))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
