"""What each network is, as data: one registry entry per architecture (notebooks 04-06, 09, 10).

An `Architecture` says everything the rest of asclib needs to know about a model: how to build
it, its width and epochs in each profile, its augmentations (a recipe of method names from
`augment.METHODS`), its weight decay and Keras decay, which class activation map suits it, which
notebook trains it, whether the paper's Tables 1 and 2 include it, and the stable number that
seeds its runs' random streams. The trainer (`train`), CAM (`cam`), the tables (`tables`), the
planner (`plan`), `predict` and the benchmarks read these entries; none of them tests a model's
name.

Adding an architecture takes its builder (a module class called as
`model_class(n_classes, width, n_mels)`, following `models.FCNN`'s `body`/`head` layout for
Grad-CAM), one `register(Architecture(...))` here and its notebook
(`tests/test_architectures.py` does it with a tiny made-up network). It retrains nothing
else: a run's key hashes only its own network's code and entry (`network_code`) and sizes
(`config.Profile.size_key`), and it joins the paper's tables only with `in_paper_tables=True`.

The entries' widths and epochs are written into a profile once, by `profiles.get_profile`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from torch import nn

from asclib import augment, models
from asclib.config import Profile, config_hash
from asclib.files import definitions_tree

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
    tiny_width: object  # a width that trains in milliseconds, for tests and checks (`profiles.tiny`)
    in_paper_tables: bool = False  # whether Tables 1 and 2 (its rows, the ensembles, the two-stage systems) include it


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


def network_code(name: str) -> str:
    """A hash of the code that builds and initialises network `name`: its class and what it
    uses in its module (`files.definitions_tree`), `models.initialise`, this module's `build`,
    and the entry's fields that change training. Part of its runs' keys (`train.run_folder`):
    a new or changed network leaves the other networks' runs current."""
    import ast

    entry = get(name)
    source = inspect.getsourcefile(entry.model_class)
    try:
        network = definitions_tree(source, [entry.model_class.__name__])
    except ValueError:  # a class defined inside a function (a test's made-up network)
        network = ast.parse(inspect.cleandoc("\n" + inspect.getsource(entry.model_class)))
    fields = {"class": entry.model_class.__name__, "seed_id": entry.seed_id, "augmentations": entry.augmentations,
              "weight_decay": entry.weight_decay, "keras_decay": entry.keras_decay}
    return config_hash([ast.dump(network), ast.dump(definitions_tree(models.__file__, ["initialise"])),
                        ast.dump(definitions_tree(__file__, ["build"])), fields])


def notebook_runs(in_paper_tables: bool = False) -> tuple[tuple[str, int], ...]:
    """(name, class count) of every run of the model notebooks, in registry order (slowest first);
    with `in_paper_tables`, only those of the networks that Tables 1 and 2 include."""
    return tuple((entry.name, n) for entry in REGISTRY.values() for n in entry.trained_for
                 if entry.in_paper_tables or not in_paper_tables)


def build(name: str, n_classes: int, profile: Profile) -> nn.Module:
    """A freshly initialised `name` for `n_classes` (10 or 3) at the profile's width:
    Keras's he-normal initialisation and the profile's BatchNorm momentum (`models`)."""
    entry = get(name)
    if n_classes not in CLASS_COUNTS:
        raise ValueError(f"unsupported class count {n_classes}: the paper's classifiers have {CLASS_COUNTS} classes")
    model = entry.model_class(n_classes, profile.width(name, n_classes), profile.features.n_mels)
    models.initialise(model, profile.models.bn_momentum)
    return model


# The reference's recipes: mixup and random crop on every batch, SpecAugment for the FCNNs
# only, and the clips of the paper's offline augmentations added to the training set.
PAPER_OFFLINE = ("spectrum_correction", "reverb_drc", "pitch_shift", "speed_change", "noise", "mix_audio")
# `paper`: the reference's exact widths and epochs (the FCNNs train twice as long as the ResNet).
# `quick`: narrow networks, every model 126 epochs (4,788 steps, six cosine cycles), trained
# once and committed (`asclib.store`): the longest budget at which the models of notebooks
# 04-06 and Table 3's rows fit a one-time training of 12 CPU-hours with several seeds
# (docs/results.md, "How the results are made and checked"); whether each loss has levelled off, notebooks
# 04-06 say. Keras's l2(1e-3) on the ResNet's kernels is 2e-3 on their gradient; the fsFCNN's
# reference had no Keras `decay`.
register(Architecture(
    name="resnet", title="ResNet", model_class=models.ResNet, seed_id=0,
    widths={"quick": {10: 4, 3: 2}, "paper": {10: 48, 3: 24}}, epochs={"quick": 126, "paper": 126},
    trained_for=(10, 3), augmentations=("mixup", "random_crop", *PAPER_OFFLINE), weight_decay=2e-3, keras_decay=True, cam="cam", notebook="04_resnet",
    tiny_width=2, in_paper_tables=True))
register(Architecture(
    name="fcnn", title="FCNN", model_class=models.FCNN, seed_id=1,
    widths={"quick": {10: (4, 8, 16), 3: (4, 8, 16)}, "paper": {10: (48, 96, 192), 3: (48, 96, 192)}},
    epochs={"quick": 126, "paper": 254},
    trained_for=(10, 3), augmentations=("mixup", "random_crop", "spec_augment", *PAPER_OFFLINE),
    weight_decay=0.0, keras_decay=True, cam="gradcam", notebook="05_fcnn",
    tiny_width=(2, 2, 4), in_paper_tables=True))
register(Architecture(
    name="fsfcnn", title="fsFCNN", model_class=models.FsFCNN, seed_id=2,
    widths={"quick": {10: (4, 8, 32, 48), 3: (4, 8, 32, 48)}, "paper": {10: (48, 96, 512, 768), 3: (48, 96, 512, 768)}},
    epochs={"quick": 126, "paper": 254},
    trained_for=(10,), augmentations=("mixup", "random_crop", "spec_augment", *PAPER_OFFLINE),
    weight_decay=0.0, keras_decay=False, cam="gradcam", notebook="06_fsfcnn",
    tiny_width=(2, 2, 4, 4), in_paper_tables=True))
