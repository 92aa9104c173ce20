"""A profile by name, with every size filled in once: the entry point of every notebook and command.

`config.PROFILES` holds the recipes as written; the widths and epochs of the networks live in
their registry entries (`asclib.architectures`). `get_profile` writes them into the profile
once (`config.ModelConfig.widths`, `config.TrainConfig.epochs`) and applies a smoke run's
reductions (`config.training_overrides`); from there the `Profile` is passed down and read
with `Profile.width`, `Profile.epochs` and `Profile.size_key`, never resolved again. `resized`
and `tiny` make variants of a resolved profile: the ablation's budget (`ablation.budget`), a
benchmark's or a test's sizes.
"""

from __future__ import annotations

import dataclasses

from asclib import architectures
from asclib.config import PROFILE_NAMES, PROFILES, Profile, training_overrides


def get_profile(name: str | Profile) -> Profile:
    """The profile `name` ("quick" or "paper") with the sizes of every registered network and,
    when `ASC_TRAINING_OVERRIDES` is set, a smoke run's shorter training; a Profile passes through."""
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: expected one of {', '.join(PROFILE_NAMES)}")
    return _shortened(_with_networks(PROFILES[name]), training_overrides())


def _with_networks(profile: Profile) -> Profile:
    """`profile` with the width and epochs of every registered network written in, its own kept."""
    widths = {(name, n): value for name, n, value in profile.models.widths}
    epochs = dict(profile.train.epochs)
    for entry in architectures.REGISTRY.values():
        for n, value in entry.widths.get(profile.name, {}).items():
            widths.setdefault((entry.name, n), value)
        if profile.name in entry.epochs:
            epochs.setdefault(entry.name, entry.epochs[profile.name])
    return dataclasses.replace(
        profile, models=dataclasses.replace(profile.models, widths=tuple((*key, value) for key, value in widths.items())),
        train=dataclasses.replace(profile.train, epochs=tuple(epochs.items())))


# TrainConfig field <- override key (`config.training_overrides`); "epochs" replaces every network's
_OVERRIDDEN = (("steps_per_epoch", "steps_per_epoch"), ("batch_size", "batch_size"))


def _shortened(profile: Profile, overrides: dict) -> Profile:
    """`profile` with the training lengths of `overrides` (`config.training_overrides`)."""
    if not overrides:
        return profile
    profile = resized(profile, epochs=overrides.get("epochs"))
    recipe = {field: overrides[key] for field, key in _OVERRIDDEN if key in overrides}
    kept = overrides.get("seeds")  # None keeps every seed
    return dataclasses.replace(
        profile, train=dataclasses.replace(profile.train, **recipe, seeds=profile.train.seeds[:kept]),
        ablation=dataclasses.replace(profile.ablation, epochs=overrides.get("epochs", profile.ablation.epochs),
                                     seeds=profile.ablation.seeds[:kept]))


def resized(profile: Profile, widths: dict | None = None, epochs: dict | int | None = None) -> Profile:
    """`profile` with other sizes: `widths` maps a network's name (both class counts) or a
    (name, class count) pair to its width; `epochs` maps names to epochs, or is one number for
    every network. Whatever is not named keeps its size; a name the profile does not size is refused."""
    widths = widths or {}
    if isinstance(epochs, int):
        epochs = {name: epochs for name, _ in profile.train.epochs}
    epochs = epochs or {}
    sized = {name for name, _, _ in profile.models.widths} | {name for name, _ in profile.train.epochs}
    unknown = sorted(({key[0] if isinstance(key, tuple) else key for key in widths} | set(epochs)) - sized)
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}: the {profile.name} profile sizes {sorted(sized)}")
    widened = tuple((name, n, widths.get((name, n), widths.get(name, value))) for name, n, value in profile.models.widths)
    trained = tuple((name, epochs.get(name, value)) for name, value in profile.train.epochs)
    return dataclasses.replace(profile, models=dataclasses.replace(profile.models, widths=widened),
                               train=dataclasses.replace(profile.train, epochs=trained))


def tiny(profile: Profile, epochs: int = 2) -> Profile:
    """`profile` with every registered network at its `tiny_width` and trained `epochs` epochs:
    runs of a few milliseconds for tests (tests/test_train.py) and checks (benchmarks/ddp_check.py)."""
    return resized(profile, {entry.name: entry.tiny_width for entry in architectures.REGISTRY.values()}, epochs)


def more_seeds(profile: Profile, count: int) -> Profile:
    """`profile` with `count` more training seeds after its last, for the models and for the
    ablation's rows alike (`python -m asclib train --more-seeds`): a long training spread over
    sittings trains them before the profile names them."""
    if count < 0:
        raise ValueError(f"--more-seeds {count}: expected 0 or more seeds")

    def extended(seeds: tuple) -> tuple:
        return (*seeds, *range(max(seeds, default=-1) + 1, max(seeds, default=-1) + 1 + count))

    return dataclasses.replace(
        profile, train=dataclasses.replace(profile.train, seeds=extended(profile.train.seeds)),
        ablation=dataclasses.replace(profile.ablation, seeds=extended(profile.ablation.seeds)))

