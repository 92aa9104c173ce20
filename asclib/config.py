"""Profiles and paths: the one place that says how big everything is and where it lives.

The ground floor of asclib: it imports nothing of it (docs/library.md, "Layers"). A profile
(`quick` or `paper`) is a frozen `Profile` made of small frozen sections. A profile changes
sizes only, never the structure of the method (docs/spec.md). `PROFILES` holds the recipes as
written; the sizes of the registered networks and a smoke run's reductions are filled in once,
above this module, by `asclib.profiles.get_profile`, at each entry point: a notebook's setup
cell, the command line (`asclib.__main__`), `report.reproduce`. From there a `Profile` is
passed down, and every library function takes a `Profile`, never a name, so a modified Profile
(`dataclasses.replace`, `profiles.resized`) reaches every function that uses it. Only `paths`
also takes a name: where things live depends on the name alone.

Paths are derived in `paths()` from the repository root, and each can be overridden by an
environment variable (`ASC_DATA_DIR`, `ASC_AUGMENTED_DIR`, `ASC_CACHE_DIR`, `ASC_RUNS_DIR`,
`ASC_RESULTS_DIR`).
`config_hash(section)` gives a stable short hash of any section, used as a cache key.

A smoke run shortens every training and nothing else (`reduce_training`; `python -m asclib
reproduce --epochs 2 --steps-per-epoch 1 --batch-size 2`): the reductions travel in the
environment variable `ASC_TRAINING_OVERRIDES`, which `profiles.get_profile` applies in every
process (notebook kernels, training workers), and `paths()` then puts the runs and results under
`<profile>-smoke/`, apart from the recipe's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

PROFILE_NAMES = ("quick", "paper")


@dataclass(frozen=True)
class AudioConfig:
    """How clips are read: rate, length and the sample format the corpus is written in."""

    sample_rate: int
    clip_seconds: float
    subtype: str  # soundfile subtype of written clips ("PCM_24" like the real set)

    @property
    def n_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel recipe of the reference (docs/spec.md section 2); `quick` only shrinks the sizes."""

    n_fft: int
    hop_length: int
    n_mels: int
    fmin: float
    fmax: float
    htk: bool = True
    log_offset: float = 1e-8
    delta_taps: int = 5  # valid 5-tap regression delta, applied twice (docs/spec.md section 3)


@dataclass(frozen=True)
class CorpusConfig:
    """Sizes of the embedded synthetic corpus (asclib.synth), per scene class.

    Training: `train_segments` device-A segments spread over `train_locations`, and for each of
    b, c, s1, s2, s3 a parallel recording of `minor_segments` of them (about 75 % A, 5 % each).
    Evaluation: `evaluate_segments` segments at `evaluate_locations` other locations, each
    recorded by every device of `data.DEVICES` (the development set's and the unseen s7-s11).
    """

    cities: tuple[str, ...] = ("barcelona", "helsinki", "lisbon", "london", "lyon",
                               "milan", "paris", "prague", "stockholm", "vienna")
    train_locations: int = 9
    evaluate_locations: int = 6
    train_segments: int = 90
    minor_segments: int = 6
    evaluate_segments: int = 30


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation sizes (docs/spec.md sections 5.2 and 6); `quick` scales the frame counts.

    Online: random crop to `crop_frames`, SpecAugment with one frequency mask of width
    0..`freq_mask_max` bins and one time mask of width 0..`time_mask_max` frames per channel,
    mixup with Beta(`mixup_alpha`, `mixup_alpha`). Offline: how many parallel pairs per device
    estimate the spectrum correction, and how many rooms make the reverberation bank.

    The methods after the paper (used only by the recipes that name them, Table 3's extra rows),
    with their authors' defaults (the CP-JKU DCASE 2023 training script, github.com/fschmid56/
    cpjku_dcase23): a device-A clip is read through a microphone of the training pool with
    `dir_probability`, from one of its `substitute_copies` copies, each through another
    microphone (the authors draw a microphone at every read; the copies make that draw ahead,
    docs/spec.md section 10); a step gets Freq-MixStyle with `mixstyle_probability`, each clip's own
    statistics weighted by Beta(`mixstyle_alpha`, `mixstyle_alpha`).
    """

    crop_frames: int
    freq_mask_max: int
    time_mask_max: int
    mixup_alpha: float = 0.4
    correction_pairs_per_device: int = 150
    rir_count: int = 24
    dir_probability: float = 0.4
    substitute_copies: int = 8
    mixstyle_probability: float = 0.8
    mixstyle_alpha: float = 0.4


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the networks (docs/spec.md section 4). `widths` holds (architecture, class count, width)
    for every registered architecture: `profiles.get_profile` fills it in from the registry
    (`paper`: the reference's exact widths)."""

    widths: tuple = ()
    # Weight of a new batch in BatchNorm's running statistics. Keras's default (0.99 kept, i.e.
    # 0.01 new) averages over about 100 steps, nothing next to the reference's 275,000 steps; a
    # quick run has a few hundred steps, where 10 % of the initial statistics would survive
    # and break evaluation. The quick profile shortens the horizon in proportion.
    bn_momentum: float = 0.01


@dataclass(frozen=True)
class TrainConfig:
    """The reference recipe (docs/spec.md section 5): SGD, per-step cosine warm restarts, mixup batches.

    An epoch is `steps_per_epoch` steps (None: ceil(training clips / batch), as in Keras); each
    step draws 2 x batch clips and mixes them into one batch, so a Keras epoch sees the data
    about twice. Epoch counts end at the bottom of a cosine cycle (2, 6, 14, ..., 126, 254).
    """

    epochs: tuple = ()  # (architecture, epochs) of every registered one (`profiles.get_profile`)
    steps_per_epoch: int | None = None
    batch_size: int = 32
    lr_max: float = 0.1
    lr_min: float = 1e-5
    momentum: float = 0.9
    keras_decay: float = 1e-6  # Keras SGD `decay`: lr / (1 + decay * step), where the architecture has it
    # Training seeds of the models of notebooks 04-06: Tables 1 and 2 are means over them, each
    # ensemble and two-stage system formed within one seed (tables.py). A seed sets the initial
    # weights, the batch order and the online augmentations; the corpus keeps its own seed.
    seeds: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class AblationConfig:
    """The augmentation ablation (Table 3, notebook 09): the 10-class ResNet trained once per
    row and seed, every row with the same width and epochs (which may be smaller than the
    notebooks' ResNet so that rows x seeds fit the profile's time budget)."""

    seeds: tuple[int, ...]
    resnet_width: int
    epochs: int  # ends at the bottom of a cosine cycle: 2, 6, 14, 30, 62, 126, ...


@dataclass(frozen=True)
class Profile:
    """Everything a run needs to know about sizes. Frozen so it can be hashed and shared."""

    name: str
    audio: AudioConfig
    features: FeatureConfig
    augment: AugmentConfig
    models: ModelConfig
    train: TrainConfig
    ablation: AblationConfig
    corpus: CorpusConfig = CorpusConfig()

    def width(self, name: str, n_classes: int):
        """The width argument of network `name` with `n_classes` classes (`ModelConfig.widths`)."""
        for entry, classes, value in self.models.widths:
            if (entry, classes) == (name, n_classes):
                return value
        raise ValueError(f"the {self.name} profile sizes no {n_classes}-class {name}: it has "
                         f"{sorted({(entry, classes) for entry, classes, _ in self.models.widths})} (a profile from "
                         "asclib.profiles.get_profile has every registered network)")

    def epochs(self, name: str) -> int:
        """How many epochs network `name` trains (`TrainConfig.epochs`)."""
        found = dict(self.train.epochs)
        if name not in found:
            raise ValueError(f"the {self.name} profile gives no epochs of {name}: it has {found} (a profile from "
                             "asclib.profiles.get_profile has every registered network)")
        return found[name]

    def size_key(self, name: str, n_classes: int) -> str:
        """A hash of what sizes one network: its width and the BatchNorm momentum (run keys,
        checkpoints); another network's sizes never enter it, so a new one retrains nothing else."""
        return config_hash({"width": self.width(name, n_classes), "bn_momentum": self.models.bn_momentum})


# The recipes as written, without the networks' sizes (`profiles.get_profile` adds them).
PROFILES = {
    "quick": Profile(
        name="quick",
        audio=AudioConfig(sample_rate=16_000, clip_seconds=4.0, subtype="PCM_16"),
        features=FeatureConfig(n_fft=1024, hop_length=512, n_mels=40, fmin=0.0, fmax=8_000.0),
        # 118 frames after deltas (paper 423): crop and masks keep the paper's proportions
        augment=AugmentConfig(crop_frames=112, freq_mask_max=4, time_mask_max=11, rir_count=12),
        # narrow networks (widths and epochs: asclib/architectures.py) on 40 mel bins
        models=ModelConfig(bn_momentum=0.05),
        # the seeds whose runs are committed (results/quick/runs/; `python -m asclib train
        # --more-seeds K` trains the next K of the models and of Table 3 alike): one seed of a
        # small network moves by points with a single rounding
        # (benchmarks/results/cpu_agreement_one_ulp_nudge_vs_committed.txt)
        train=TrainConfig(steps_per_epoch=38, seeds=(0, 1)),
        # Table 3's rows at notebook 04's budget (its ResNet's width and epochs), so that its
        # "no sa" row is notebook 04's runs, under the models' first seeds: every step is paired
        ablation=AblationConfig(seeds=(0,), resnet_width=4, epochs=126),
    ),
    "paper": Profile(
        name="paper",
        audio=AudioConfig(sample_rate=44_100, clip_seconds=10.0, subtype="PCM_24"),
        features=FeatureConfig(n_fft=2048, hop_length=1024, n_mels=128, fmin=0.0, fmax=22_050.0),
        # four DIR copies of each device-A clip: about 54 GB of 24-bit audio on the real data
        augment=AugmentConfig(crop_frames=400, freq_mask_max=12, time_mask_max=39, substitute_copies=4),
        models=ModelConfig(),
        train=TrainConfig(),
        ablation=AblationConfig(seeds=(0, 1, 2), resnet_width=48, epochs=126),
    ),
}


TRAINING_OVERRIDES_VARIABLE = "ASC_TRAINING_OVERRIDES"
SMOKE_SUFFIX = "-smoke"  # runs/<profile>-smoke/, results/<profile>-smoke/: a shortened run's outputs


def reduce_training(epochs: int | None = None, steps_per_epoch: int | None = None,
                    batch_size: int | None = None, seeds: int | None = None) -> dict:
    """Shorten every training of this process and of the processes it starts (notebook kernels,
    training workers) for a smoke run, by setting `ASC_TRAINING_OVERRIDES`; with no argument,
    unset it (the profile's own recipe). `epochs` replaces the epochs of every network and of
    the ablation's runs; `steps_per_epoch` and `batch_size` those of `profile.train` (a mixup
    step draws 2 x batch_size clips); `seeds` keeps only the first that many training seeds of
    the models and of the ablation. Feature sizes and model widths never change. Returns the
    overrides now in force."""
    chosen = _checked({key: value for key, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch),
                                                     ("batch_size", batch_size), ("seeds", seeds))
                       if value is not None})
    if chosen:
        os.environ[TRAINING_OVERRIDES_VARIABLE] = json.dumps(chosen, sort_keys=True)
    else:
        os.environ.pop(TRAINING_OVERRIDES_VARIABLE, None)
    return chosen


def training_overrides() -> dict:
    """The smoke-run reductions in force (`ASC_TRAINING_OVERRIDES`, JSON), checked; {} when unset."""
    text = os.environ.get(TRAINING_OVERRIDES_VARIABLE, "")
    try:
        overrides = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"{TRAINING_OVERRIDES_VARIABLE}={text!r} is not JSON ({error})") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"{TRAINING_OVERRIDES_VARIABLE}={text!r}: expected a JSON object")
    return _checked(overrides)


def _checked(overrides: dict) -> dict:
    """`overrides` if every key is known and every value fits; otherwise a ValueError naming it."""
    unknown = sorted(set(overrides) - set(KNOWN_OVERRIDES))
    if unknown:
        raise ValueError(f"unknown training override(s) {', '.join(unknown)}: expected {', '.join(KNOWN_OVERRIDES)}")
    for key, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"training override {key}={value!r} (--{key.replace('_', '-')}): "
                             "expected a positive whole number")
    epochs = overrides.get("epochs")
    if epochs is not None and epochs not in cycle_ends(epochs):
        raise ValueError(f"training override epochs={epochs} (--epochs): a run must end at the bottom of a "
                         "cosine cycle, i.e. after 2, 6, 14, 30, 62, 126, 254, ... epochs")
    return overrides


def cycle_ends(epochs: int) -> list[int]:
    """The epochs at which a cosine cycle of the training schedule ends (2, 6, 14, 30, ...), up
    to `epochs` (`train.learning_rate`; a run's epochs must be one of them)."""
    ends, end, length = [], 2, 2
    while end <= epochs:
        ends.append(end)
        length *= 2
        end += length
    return ends


KNOWN_OVERRIDES = ("batch_size", "epochs", "seeds", "steps_per_epoch")


@dataclass(frozen=True)
class Paths:
    """Where a profile's data, caches, training runs and results live."""

    data: Path
    augmented: Path
    cache: Path
    runs: Path
    results: Path


def _env_path(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value).expanduser().resolve() if value else default


def paths(profile: str | Profile) -> Paths:
    """Derive every folder of `profile` from the repository root or its environment override.

    `ASC_DATA_DIR` names the dataset folder itself (the one holding `meta.csv`); the other
    variables name a root under which each profile gets its own sub-folder. While a smoke run's
    reductions are in force (`ASC_TRAINING_OVERRIDES`), runs and results go to `<profile>-smoke`,
    so that they never replace or mix with the recipe's; data and caches, which do not depend on
    the training, are shared.
    """
    name = profile.name if isinstance(profile, Profile) else profile
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: expected one of {', '.join(PROFILE_NAMES)}")
    outputs = name + SMOKE_SUFFIX if training_overrides() else name
    return Paths(
        data=_env_path("ASC_DATA_DIR", PROJECT_ROOT / "data" / name / "corpus"),
        augmented=_env_path("ASC_AUGMENTED_DIR", PROJECT_ROOT / "data") / name / "augmented",
        cache=_env_path("ASC_CACHE_DIR", PROJECT_ROOT / "cache") / name,
        runs=_env_path("ASC_RUNS_DIR", PROJECT_ROOT / "runs") / outputs,
        results=_env_path("ASC_RESULTS_DIR", PROJECT_ROOT / "results") / outputs,
    )


def config_hash(section) -> str:
    """A stable 12-hex-digit hash of a config section (any frozen dataclass or plain value)."""
    if dataclasses.is_dataclass(section):
        payload = {"type": type(section).__name__, "fields": dataclasses.asdict(section)}
    else:
        payload = section
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
