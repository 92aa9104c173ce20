"""What each network is, as data: one registry entry per architecture (notebooks 04-06, 09, 10).

An `Architecture` says everything the rest of asclib needs to know about a model: how to build
it, its width and epochs in each profile, its augmentations (a recipe of method names from
`augment.METHODS`), its weight decay and Keras decay, which class activation map suits it, which notebook trains
it, and the stable number that seeds its runs' random streams. The trainer (`train`), CAM
(`cam`), the tables (`tables`), the planner (`plan`), `predict` and the benchmarks read these
entries; none of them tests a model's name.

Adding a fourth architecture takes its builder (a module class called as
`model_class(n_classes, width, n_mels)`, following `models.FCNN`'s `body`/`head` layout for
Grad-CAM), one `register(Architecture(...))` here and its notebook
(`tests/test_architectures.py` does it with a tiny made-up network).

A profile holds the resolved sizes (`config.ModelConfig.widths`, `config.TrainConfig.epochs`):
`get_profile` fills them in from the entries (`resolved`), `resized` changes one architecture's
(the ablation's budget, a smoke run's epochs), and a run's key hashes only its own sizes
(`size_key`), so that a new entry never retrains the others' runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import nn

from asclib import augment, models
from asclib.config import Profile, config_hash

CLASS_COUNTS = (10, 3)  # the paper's two classifiers: ten scenes, three coarse classes
CAM_METHODS = ("cam", "gradcam")


@dataclass(frozen=True)
class Architecture:
    """One network of the registry (module docstring)."""

    name: str  # key in run names, files and tables ("resnet")
    title: str  # as tables and figures print it ("ResNet")
    model_class: type  # called as model_class(n_classes, width, n_mels)
    seed_id: int  # its place in the seeds of its runs' generators: never reuse or change one
    widths: dict  # profile name -> {class count: width argument of model_class}
    epochs: dict  # profile name -> epochs (ending at the bottom of a cosine cycle)
    trained_for: tuple[int, ...]  # the class counts its notebook trains, in training order
    augmentations: tuple[str, ...]  # its recipe: names of `augment.METHODS`
    weight_decay: float  # L2 on its convolution kernels, as a gradient term (Keras l2(c): 2c)
    keras_decay: bool  # whether its learning rate is divided by (1 + profile.train.keras_decay * step)
    cam: str  # the class activation map `cam.maps` draws for it by default
    notebook: str  # the notebook that trains it (without .ipynb)
    tiny_width: object  # a width that trains in milliseconds, for tests and checks (`tiny`)


REGISTRY: dict[str, Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    """Add `architecture` to the registry, refusing a name or seed id already taken."""
    if architecture.name in REGISTRY:
        raise ValueError(f"architecture {architecture.name!r} is registered already")
    taken = {entry.seed_id: entry.name for entry in REGISTRY.values()}
    if architecture.seed_id in taken:
        raise ValueError(f"seed id {architecture.seed_id} of {architecture.name!r} belongs to {taken[architecture.seed_id]!r}")
    augment.training_online(architecture.augmentations)  # an unknown name or an unusable recipe is refused here
    if architecture.cam not in CAM_METHODS:
        raise ValueError(f"cam={architecture.cam!r} of {architecture.name!r}: expected one of {CAM_METHODS}")
    REGISTRY[architecture.name] = architecture
    return architecture


def get(name: str) -> Architecture:
    """The registry entry `name`, or a ValueError listing the registered ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}: expected one of {tuple(REGISTRY)}")
    return REGISTRY[name]


def of_model(model: nn.Module) -> Architecture:
    """The entry whose class built `model` (the most specific one: the fsFCNN is an FCNN too)."""
    matches = [entry for entry in REGISTRY.values() if isinstance(model, entry.model_class)]
    if not matches:
        raise ValueError(f"no registered architecture builds a {type(model).__name__}: asclib.architectures has "
                         f"{', '.join(entry.model_class.__name__ for entry in REGISTRY.values())}")
    return next(entry for entry in matches if all(issubclass(entry.model_class, other.model_class) for other in matches))


def notebook_runs() -> tuple[tuple[str, int], ...]:
    """(name, class count) of every run of the model notebooks, in registry order (slowest first)."""
    return tuple((entry.name, n) for entry in REGISTRY.values() for n in entry.trained_for)


def width(name: str, n_classes: int, profile: Profile):
    """The width argument of `name` with `n_classes` classes in `profile`: the profile's own
    (`config.ModelConfig.widths`) or else the entry's for the profile's name."""
    for entry_name, classes, value in profile.models.widths:
        if (entry_name, classes) == (name, n_classes):
            return value
    entry = get(name)
    if n_classes not in entry.widths.get(profile.name, {}):
        raise ValueError(f"no width of a {n_classes}-class {name} in the {profile.name} profile: its entry has "
                         f"{ {p: tuple(w) for p, w in entry.widths.items()} }")
    return entry.widths[profile.name][n_classes]


def epochs(name: str, profile: Profile) -> int:
    """How many epochs `name` trains in `profile` (`config.TrainConfig.epochs`, else its entry's)."""
    found = dict(profile.train.epochs)
    if name in found:
        return found[name]
    entry = get(name)
    if profile.name not in entry.epochs:
        raise ValueError(f"no epochs of {name} in the {profile.name} profile: its entry has {entry.epochs}")
    return entry.epochs[profile.name]


def size_key(name: str, n_classes: int, profile: Profile) -> str:
    """A hash of what sizes one model: its width and the BatchNorm momentum (run keys, checkpoints)."""
    return config_hash({"width": width(name, n_classes, profile), "bn_momentum": profile.models.bn_momentum})


def resolved(profile: Profile) -> Profile:
    """`profile` with the width and epochs of every registered architecture written in, its own
    values kept (`config.get_profile` returns resolved profiles)."""
    widths = {(name, n): value for name, n, value in profile.models.widths}
    found = dict(profile.train.epochs)
    for entry in REGISTRY.values():
        for n, value in entry.widths.get(profile.name, {}).items():
            widths.setdefault((entry.name, n), value)
        if profile.name in entry.epochs:
            found.setdefault(entry.name, entry.epochs[profile.name])
    return dataclasses.replace(
        profile, models=dataclasses.replace(profile.models, widths=tuple((*key, value) for key, value in widths.items())),
        train=dataclasses.replace(profile.train, epochs=tuple(found.items())))


def resized(profile: Profile, widths: dict | None = None, epochs: dict | int | None = None) -> Profile:
    """`profile` (resolved) with other sizes: `widths` maps an architecture's name (both class
    counts) or a (name, class count) pair to its width; `epochs` maps names to epochs, or is one
    number for every architecture. Whatever is not named keeps its size."""
    profile, widths = resolved(profile), widths or {}
    if isinstance(epochs, int):
        epochs = {name: epochs for name, _ in profile.train.epochs}
    epochs = epochs or {}
    for name in [*(key[0] if isinstance(key, tuple) else key for key in widths), *epochs]:
        get(name)  # an unknown name is refused, not ignored
    sized = tuple((name, n, widths.get((name, n), widths.get(name, value))) for name, n, value in profile.models.widths)
    trained = tuple((name, epochs.get(name, value)) for name, value in profile.train.epochs)
    return dataclasses.replace(profile, models=dataclasses.replace(profile.models, widths=sized),
                               train=dataclasses.replace(profile.train, epochs=trained))


def tiny(profile: Profile, epochs: int = 2) -> Profile:
    """`profile` with every architecture at its `tiny_width` and trained `epochs` epochs: runs of
    a few milliseconds for tests (tests/test_train.py) and checks (benchmarks/ddp_check.py)."""
    return resized(profile, {entry.name: entry.tiny_width for entry in REGISTRY.values()}, epochs)


def build(name: str, n_classes: int, profile: Profile) -> nn.Module:
    """A freshly initialised `name` for `n_classes` (10 or 3) at the profile's width:
    Keras's he-normal initialisation and the profile's BatchNorm momentum (`models`)."""
    entry = get(name)
    if n_classes not in CLASS_COUNTS:
        raise ValueError(f"unsupported class count {n_classes}: the paper's classifiers have {CLASS_COUNTS} classes")
    model = entry.model_class(n_classes, width(name, n_classes, profile), profile.features.n_mels)
    models.initialise(model, profile.models.bn_momentum)
    return model


# The reference's recipes: mixup and random crop on every batch, SpecAugment for the FCNNs
# only, and the six offline augmentations' clips added to the training set.
PAPER_OFFLINE = ("spectrum_correction", "reverb_drc", "pitch_shift", "speed_change", "noise", "mix_audio")
# `paper`: the reference's exact widths and epochs (the FCNNs train twice as long as the ResNet).
# `quick`: narrow networks, every model 14 epochs (532 steps, three cosine cycles): what three
# seeds of five models and of the ablation's 18 runs allow in the budget of a 2-core CPU without
# AVX-512 (docs/performance.md, "Time and seeds"); the loss still falls (notebooks 04-06). Keras's l2(1e-3) on
# the ResNet's kernels is 2e-3 on their gradient; the fsFCNN's reference had no Keras `decay`.
register(Architecture(
    name="resnet", title="ResNet", model_class=models.ResNet, seed_id=0,
    widths={"quick": {10: 4, 3: 2}, "paper": {10: 48, 3: 24}}, epochs={"quick": 14, "paper": 126},
    trained_for=(10, 3), augmentations=("mixup", "random_crop", *PAPER_OFFLINE), weight_decay=2e-3, keras_decay=True, cam="cam", notebook="04_resnet",
    tiny_width=2))
register(Architecture(
    name="fcnn", title="FCNN", model_class=models.FCNN, seed_id=1,
    widths={"quick": {10: (4, 8, 16), 3: (4, 8, 16)}, "paper": {10: (48, 96, 192), 3: (48, 96, 192)}},
    epochs={"quick": 14, "paper": 254},
    trained_for=(10, 3), augmentations=("mixup", "random_crop", "spec_augment", *PAPER_OFFLINE),
    weight_decay=0.0, keras_decay=True, cam="gradcam", notebook="05_fcnn",
    tiny_width=(2, 2, 4)))
register(Architecture(
    name="fsfcnn", title="fsFCNN", model_class=models.FsFCNN, seed_id=2,
    widths={"quick": {10: (4, 8, 32, 48), 3: (4, 8, 32, 48)}, "paper": {10: (48, 96, 512, 768), 3: (48, 96, 512, 768)}},
    epochs={"quick": 14, "paper": 254},
    trained_for=(10,), augmentations=("mixup", "random_crop", "spec_augment", *PAPER_OFFLINE),
    weight_decay=0.0, keras_decay=False, cam="gradcam", notebook="06_fsfcnn",
    tiny_width=(2, 2, 4, 4)))
