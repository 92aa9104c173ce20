"""Training the CNNs with the reference recipe (notebooks 04-06, 09; predictions: `asclib.evaluation`).

Recipe (docs/spec.md section 5): batches of 32 made by mixing two halves of 64 shuffled clips
(mixup, Beta(0.4, 0.4) per pair), SpecAugment before a random crop where the run's recipe has
it (the FCNN's and fsFCNN's; `asclib.architectures`),
Keras-style SGD (momentum 0.9) with a per-step cosine schedule that restarts at epochs 0, 2,
6, 14, ... (cycles of 2, 4, 8, ... epochs) from 0.1 down to 1e-5, divided by
(1 + 1e-6 * step) as Keras's `decay` did (0 for the fsFCNN), L2 on the ResNet's conv kernels,
soft-target cross-entropy on logits.

A checkpoint is written after every epoch into the run folder, whose name hashes everything
that defines the run (model, classes, profile sizes, online augmentations, seed, training
clips, and the code that trains it, `training_code_hash` and `architectures.network_code`): a run that is
stopped and started again resumes from its last epoch and ends with the same weights as one
that never stopped; a finished run is not trained again. The evaluation split is never used
during training: the model of the last epoch is the model.

Started by `torchrun` (several GPUs, one process each; asclib/distributed.py), `fit` trains
one run with all the processes: each draws the same global batch and computes its contiguous
share, BatchNorm and dropout work on the global batch, DistributedDataParallel averages the
gradients, and the loss logged is the global batch's. The loss curve is that of one process
within floating-point rounding (tests/test_distributed.py); rank 0 alone reads and writes the
checkpoint, which does not depend on the number of processes, so a run resumes with any number.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from asclib import architectures, augment, batches, curves, distributed, features, kernels, synth
from asclib.config import Profile, config_hash, cycle_ends, paths
from asclib.data import COARSE_CLASSES, SCENES
from asclib.files import atomic_path, code_tree, definitions_tree, recorded_settings

CHECKPOINT = "checkpoint.pt"
# Training runs on one CPU thread, wherever it is started: the quick networks are too small to
# gain much from a second thread, two runs side by side (`runs.prepare`) use two cores better, and
# one fixed thread count keeps every run bit-identical whether a notebook or `runs.prepare` trains it.
TRAIN_THREADS = 1
# The code that decides what every training run computes: this module's `fit` and
# `training_set` with what they use here, and the whole modules they train with (None: all of
# it). Its hash is part of every run's key, so that a changed trainer, batch or online
# augmentation never reuses an old checkpoint, while this module's other functions (summaries,
# job lists) change without retraining anything. A network's own code enters only its own
# runs' keys (`architectures.network_code`); the offline augmentations' code enters through the
# training clips' fingerprint.
TRAINING_CODE = {"train": ("fit", "training_set"), "batches": None, "distributed": None, "features": None}
# A run has levelled off when its last doubling of training (the last cosine cycle is as long as
# all the ones before it) lowered the training loss by less than this share (%).
PLATEAU_CHANGE = 3.0


class CheckpointError(ValueError):
    """A checkpoint does not belong to the model, class count or profile it is loaded into."""


def classes_of(n_classes: int) -> tuple[str, ...]:
    """The class names in output order: the ten scenes or the three coarse classes."""
    return SCENES if n_classes == 10 else COARSE_CLASSES


def target_column(n_classes: int) -> str:
    return "scene" if n_classes == 10 else "coarse"


def steps_per_epoch(profile: Profile, n_clips: int) -> int:
    """Steps of one epoch: the profile's count, or ceil(clips / batch) as Keras counted them."""
    return profile.train.steps_per_epoch or int(np.ceil(n_clips / profile.train.batch_size))


def default_workers() -> int:
    """Runs trained side by side by `fit_many`: one per CPU core (one thread each), one on a GPU."""
    import os

    return 1 if torch.cuda.is_available() else max(1, len(os.sched_getaffinity(0)))


@functools.lru_cache(maxsize=1)
def training_code_hash() -> str:
    """A hash of the code of `TRAINING_CODE`, docstrings and comments left out (its syntax tree):
    editing the prose of that code keeps every run, changing what it computes does not.
    A run's key adds its own network's code (`architectures.network_code`)."""
    import ast
    import importlib

    trees = []
    for module, roots in TRAINING_CODE.items():
        source = importlib.import_module(f"asclib.{module}").__file__
        trees.append(ast.dump(definitions_tree(source, roots) if roots else code_tree(source)))
    return config_hash(trees)


def seed_group(seed: int) -> str:
    """The sub-folder of the profile's runs holding the notebooks' models of one training seed."""
    return f"seed-{seed}"


def learning_rate(step: int, steps_per_epoch: int, profile: Profile, keras_decay: float) -> float:
    """The reference's per-step learning rate (docs/spec.md section 5.3), including Keras's `decay` factor."""
    config = profile.train
    position = step / steps_per_epoch  # in epochs
    start, length = 0, 2
    while position >= start + length:
        start, length = start + length, length * 2
    cosine = 0.5 * (1 + np.cos(np.pi * (position - start) / length))
    return (config.lr_min + (config.lr_max - config.lr_min) * cosine) / (1 + keras_decay * step)


def plateau_table(history: pd.DataFrame) -> pd.DataFrame:
    """Mean training loss over the last epoch of each finished cosine cycle, and its change from
    the previous cycle's: the loss at the bottom of the learning rate, where cycles compare
    fairly. A small last change means more training no longer improves the fit (notebooks 04-06)."""
    per_epoch = history.groupby("epoch")["loss"].mean()
    ends = cycle_ends(int(per_epoch.index.max()) + 1)
    losses = per_epoch.loc[[end - 1 for end in ends]].to_numpy()
    table = pd.DataFrame({"cycle end (epoch)": ends, "steps": [end * steps_in(history) for end in ends],
                          "loss over its last epoch": losses.round(3)})
    table["change from previous cycle %"] = (100 * table["loss over its last epoch"].pct_change()).round(1)
    return table.set_index("cycle end (epoch)")


def steps_in(history: pd.DataFrame) -> int:
    """Steps per epoch of a training history."""
    return int((history["epoch"] == history["epoch"].iloc[0]).sum())


class KerasSGD(torch.optim.Optimizer):
    """SGD with momentum in Keras's form: v <- m v - lr (g + wd w); w <- w + v.

    PyTorch's form (v <- m v + g; w <- w - lr v) differs whenever the learning rate changes,
    which here is every step. Each group is updated with torch's `_foreach` operations: a few
    kernel launches per step instead of a few per parameter (on a GPU the CPU's launching was
    part of the step's time); on a CPU they are the per-tensor operations, bit for bit.
    """

    def __init__(self, groups, lr: float, momentum: float):
        super().__init__(groups, {"lr": lr, "momentum": momentum, "weight_decay": 0.0})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            parameters = [parameter for parameter in group["params"] if parameter.grad is not None]
            if not parameters:
                continue
            gradients = [parameter.grad for parameter in parameters]
            if group["weight_decay"]:
                gradients = torch._foreach_add(gradients, parameters, alpha=group["weight_decay"])
            velocities = [self.state[parameter].setdefault("velocity", torch.zeros_like(parameter))
                          for parameter in parameters]
            torch._foreach_mul_(velocities, group["momentum"])
            torch._foreach_add_(velocities, gradients, alpha=-group["lr"])
            torch._foreach_add_(parameters, velocities)


def _optimizer(model: torch.nn.Module, name: str, profile: Profile) -> KerasSGD:
    config = profile.train
    decay = architectures.get(name).weight_decay
    kernels = [p for m in model.modules() if isinstance(m, torch.nn.Conv2d) for p in m.parameters(recurse=False)]
    kernel_ids = {id(p) for p in kernels}
    others = [p for p in model.parameters() if id(p) not in kernel_ids]
    return KerasSGD([{"params": kernels, "weight_decay": decay}, {"params": others}],
                    lr=config.lr_max, momentum=config.momentum)


class MixupBatches:
    """The reference generator's order: walk a shuffled list 2 x batch clips at a time (leftovers
    of a pass are dropped), the first half mixed with the second. Its state is checkpointed."""

    def __init__(self, n_clips: int, batch_size: int, rng: np.random.Generator):
        if n_clips < 2 * batch_size:
            raise ValueError(f"{n_clips} training clips cannot fill one mixup step of {2 * batch_size}")
        self.n_clips, self.batch_size, self.rng = n_clips, batch_size, rng
        self.order, self.position = rng.permutation(n_clips), 0

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        size = 2 * self.batch_size
        if self.position + size > self.n_clips:
            self.order, self.position = self.rng.permutation(self.n_clips), 0
        chosen = self.order[self.position:self.position + size]
        self.position += size
        return chosen[: self.batch_size], chosen[self.batch_size:]

    def state_dict(self) -> dict:
        return {"order": self.order.copy(), "position": self.position, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.position = state["order"], state["position"]
        self.rng.bit_generator.state = state["rng"]


@dataclass
class TrainingSet:
    """Training clips as log-mels (rows, mels, frames): memory-mapped from the feature store
    (`features.LogMelRows`) or an array made in memory; class indices of the training clips
    (the first rows); the fingerprint identifies the rows' contents (their feature-cache names);
    `paths` names the clip of each row (empty for data made in memory). `substitutes`: for each
    training clip the rows of its copies that a step may read instead (clips x copies, rows after
    the clips; a substituting method such as `dir`), -1 where it has none; None without such a method."""

    log_mels: features.LogMelRows | np.ndarray
    labels: np.ndarray
    fingerprint: str
    paths: tuple[str, ...] = ()
    methods: tuple[str, ...] | None = None  # its offline augmentations; None: made in memory, unknown
    substitutes: np.ndarray | None = None


def training_set(index: pd.DataFrame, n_classes: int, profile: Profile, recipe, seed: int = 0) -> TrainingSet:
    """The training split of `index` plus the clips of the offline augmentations of `recipe`
    (method names, `augment.split`; generated when missing); a substituting method's copies
    (`dir`, several per clip) follow as extra rows that only `substitutes` points to."""
    _, offline = augment.split(recipe)
    for method in offline:
        augment.generate_offline(index, profile, method, seed)
    added = [method for method in offline if not augment.METHODS[method].substitutes]
    replacing = [method for method in offline if augment.METHODS[method].substitutes]
    if len(replacing) > 1:
        raise ValueError(f"recipe {tuple(recipe)}: at most one substituting augmentation, got {replacing}")
    rows = [index[index["split"] == "train"]] + ([augment.load_augmented(profile, added)] if added else [])
    rows = pd.concat(rows, ignore_index=True)
    labels = pd.Categorical(rows[target_column(n_classes)].astype(str), categories=classes_of(n_classes)).codes
    clips, substitutes = rows[["path", "filename"]], None
    if replacing:
        copies = augment.load_augmented(profile, replacing)
        position = pd.Series(np.arange(len(rows)), index=rows["filename"])
        rank = copies.groupby("source", sort=False).cumcount().to_numpy()
        substitutes = np.full((len(rows), rank.max() + 1), -1, dtype=np.int64)
        substitutes[position.loc[copies["source"]].to_numpy(), rank] = len(clips) + np.arange(len(copies))
        clips = pd.concat([clips, copies[["path", "filename"]]], ignore_index=True)
    clip_paths = list(clips["path"])
    return TrainingSet(features.log_mel_rows(clip_paths, profile), labels.astype(np.int64),
                       clips_fingerprint(clips, profile), tuple(clip_paths), offline, substitutes)


# The manifests in which the project's data sets record the settings that made them
DATA_SET_MANIFESTS = (synth.MANIFEST, synth.JOINED_MANIFEST, augment.MANIFEST)


def clips_fingerprint(clips: pd.DataFrame, profile: Profile) -> str:
    """What identifies training clips (`path`, and `filename` within its data set), the same in
    every clone: each clip's name with the settings that made its data set (the synthetic
    corpus, an augmented set; `files.recorded_settings`), less the machine's kernel caps, which
    every run key holds anyway. Where a data set was not made here (the real data), the clips'
    cache names stand instead: their paths, sizes and modification times."""
    made = {}
    for path, filename in zip(clips["path"], clips["filename"]):
        root = Path(path).parents[len(Path(filename).parts) - 1]
        if root not in made:
            settings = recorded_settings(root, DATA_SET_MANIFESTS)
            if settings is None:
                return config_hash([file.name for file in features.cache_files(list(clips["path"]), profile)])
            made[root] = config_hash({key: value for key, value in settings.items() if key != "kernels"})
    return config_hash([[made[Path(path).parents[len(Path(filename).parts) - 1]], filename]
                        for path, filename in zip(clips["path"], clips["filename"])])


def device_name() -> str:
    """What training runs on: the GPU's name, or the CPU and the thread count of training."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU ({TRAIN_THREADS} thread{'s' if TRAIN_THREADS > 1 else ''})"


@dataclass
class Run:
    """A trained model with its training history (one row per step) and where it is stored."""

    name: str
    n_classes: int
    model: torch.nn.Module
    history: pd.DataFrame
    folder: Path
    seconds: float  # training time of the whole run, over all the calls that trained it


PRECISIONS = ("fp32", "bf16")


def default_precision(device: torch.device) -> str:
    """The arithmetic of training: `ASC_PRECISION` if set, else bf16 autocast on a GPU (its
    matrix units are several times faster in bf16) and float32 on a CPU. Under bf16 autocast
    the convolutions and linear layers compute in bfloat16; the weights, the optimiser, the
    BatchNorm statistics, the softmax and the loss stay in float32 (docs/performance.md, "Training at full scale", bf16 autocast)."""
    import os

    precision = os.environ.get("ASC_PRECISION") or ("bf16" if device.type == "cuda" else "fp32")
    if precision not in PRECISIONS:
        raise ValueError(f"ASC_PRECISION={precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


def compiled(network: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`network` compiled by `torch.compile` on a GPU, where fusing its many small memory-bound
    layers (BatchNorm, ReLU, pooling) makes the paper's ResNet step about 1.7 times faster and
    the FCNNs' about 1.2 times (docs/performance.md, "Training at full scale"); the first steps of each run
    pay the compilation (15 to 45 s). `ASC_COMPILE=0` keeps eager execution; on a CPU it is
    always eager (the quick runs, bit for bit as before)."""
    import os

    setting = os.environ.get("ASC_COMPILE", "1")
    if setting not in ("0", "1"):
        raise ValueError(f"ASC_COMPILE={setting!r}: expected 0 or 1")
    return torch.compile(network) if device.type == "cuda" and setting == "1" else network


@contextmanager
def _clear_out_of_memory(name: str, n_classes: int, profile: Profile, share: slice):
    """Turn the GPU's out-of-memory error into one that says which setting to lower."""
    try:
        yield
    except torch.OutOfMemoryError as error:
        per_process = share.stop - share.start
        raise torch.OutOfMemoryError(
            f"the GPU ran out of memory training the {n_classes}-class {name} with {per_process} clips per "
            f"process (global batch {profile.train.batch_size}): run it on more GPUs with torchrun (each takes "
            "an equal share of the batch) or lower the batch size (`--batch-size` of reproduce and train, i.e. the "
            f"profile's train.batch_size), which departs from the paper's recipe. torch said: {str(error).splitlines()[0]}") from None


def recipe_of(name: str, augmentations=None) -> tuple[str, ...]:
    """A run's augmentations: `augmentations` (method names) or else its architecture's recipe."""
    return tuple(architectures.get(name).augmentations if augmentations is None else augmentations)


def online_methods(name: str, augmentations=None) -> tuple[str, ...]:
    """The online augmentations of a run (`recipe_of`), checked (`augment.training_online`)."""
    return augment.training_online(recipe_of(name, augmentations))


def run_key(name: str, n_classes: int, profile: Profile, seed: int, data: TrainingSet,
            augmentations=None, precision: str = "fp32") -> dict:
    """Everything that defines a run, which its folder's name hashes (`run_folder`): the network
    and its code, its sizes, recipe and seed, the training clips and the training code, and the
    machine's kernel caps (`kernels.settings`), the one entry that is not the recipe's."""
    # only this model's sizes: another architecture's width or epochs do not change this run, and
    # only its own seed: adding seeds to the profile keeps the runs of the others
    recipe = dataclasses.replace(profile.train, epochs=profile.epochs(name), seeds=())
    mixed = {"precision": precision} if precision != "fp32" else {}  # float32 runs keep their earlier keys
    return {**mixed, "name": name, "classes": n_classes, "profile": profile.name,
            "online": [(method, augment.METHODS[method].seed_id) for method in online_methods(name, augmentations)],
            "models": profile.size_key(name, n_classes), "train": config_hash(recipe),
            "augment": config_hash(profile.augment), "features": config_hash(profile.features),
            "seed": seed, "clips": data.fingerprint, "threads": TRAIN_THREADS,
            "kernels": kernels.settings(), "code": training_code_hash(),
            "network": architectures.network_code(name)}


def run_folder(name: str, n_classes: int, profile: Profile, seed: int, data: TrainingSet,
               augmentations=None, group: str = "", precision: str = "fp32") -> Path:
    """Where a run lives: `group` under the profile's runs, named by its model and `run_key`'s hash."""
    key = config_hash(run_key(name, n_classes, profile, seed, data, augmentations, precision))
    return paths(profile).runs / group / f"{name}-{n_classes}c-{key}"


def _metadata(name: str, n_classes: int, profile: Profile) -> dict:
    return {"name": name, "classes": n_classes, "profile": profile.name,
            "models": profile.size_key(name, n_classes),
            "features": config_hash(profile.features)}


def read_checkpoint(path: str | Path) -> dict:
    """The state stored in a checkpoint, read with `weights_only=True`: only tensors and plain
    values (numbers, strings, lists, tuples, dicts) are rebuilt, so no code stored in the file
    ever runs. A file holding anything else (a checkpoint of an older asclib, which stored numpy
    objects, or a crafted pickle) or no checkpoint at all raises CheckpointError."""
    import pickle
    import re

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        found = re.search(r"GLOBAL \S+|Unsupported operand \d+", str(error))  # torch's words for what it refused
        reason = found.group(0) if found else (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(f"{path} cannot be loaded safely ({reason}): it holds objects other than tensors "
                              "and plain values, as checkpoints of older asclib versions did, or it is not a "
                              f"checkpoint. Delete its run folder ({Path(path).parent}) and train again") from None


def load_checkpoint(path: str | Path, name: str, n_classes: int, profile: Profile) -> dict:
    """Read a checkpoint safely (`read_checkpoint`) and check it belongs to this model, class
    count and profile."""
    state = read_checkpoint(path)
    expected, found = _metadata(name, n_classes, profile), state.get("metadata", {})
    if found != expected:
        differences = ", ".join(f"{k}: checkpoint {found.get(k)!r}, asked {v!r}"
                                for k, v in expected.items() if found.get(k) != v)
        raise CheckpointError(f"{path} does not fit a {n_classes}-class {name} of the {profile.name} profile "
                              f"({differences})")
    return state


def fit(name: str, n_classes: int, data: TrainingSet, profile: Profile, seed: int = 0,
        stop_after: int | None = None, progress: bool = True, augmentations=None,
        group: str = "", precision: str | None = None) -> Run:
    """Train (or resume, or load when finished) a model; `stop_after` ends this call after that
    many more epochs (the run resumes from there next time); `augmentations` (method names,
    `augment.METHODS`) replaces the architecture's recipe (the ablation of notebook 09): its
    online methods shape the batches and its offline ones must be those of `data`; `group` names a sub-folder of the
    profile's runs (the ablation's runs live in `ablation/`, apart from the notebooks' models
    that `predict` uses); `precision` is "fp32" or "bf16" (default: `default_precision`). Under
    torchrun every process calls it and they train the run together (module docstring); the
    global batch size must be a multiple of the number of processes."""
    from tqdm.auto import tqdm

    ctx = distributed.context()
    device = ctx.device
    precision = precision or default_precision(device)
    _, offline = augment.split(recipe_of(name, augmentations))
    if data.methods is not None and tuple(data.methods) != offline:
        raise ValueError(f"the training set holds the clips of {data.methods or 'no'} offline augmentations, the "
                         f"recipe of this {name} run asks for {offline or 'none'}: make it with "
                         "training_set(index, n_classes, profile, recipe)")
    folder = run_folder(name, n_classes, profile, seed, data, augmentations, group, precision)
    online = online_methods(name, augmentations)
    masked = "spec_augment" in online
    if any(augment.METHODS[method].substitutes for method in offline) and data.substitutes is None:
        raise ValueError(f"the recipe of this {name} run substitutes clips ({offline}), the training set has no "
                         "copies to substitute: make it with training_set(index, n_classes, profile, recipe)")
    later = batches.LaterMethods(seed, data.substitutes, "freq_mixstyle" in online)
    folder.mkdir(parents=True, exist_ok=True)
    architecture = architectures.get(name)
    epochs = profile.epochs(name)
    steps = steps_per_epoch(profile, len(data.labels))
    keras_decay = profile.train.keras_decay if architecture.keras_decay else 0.0
    share = ctx.share(profile.train.batch_size)

    torch.manual_seed(seed)
    # channels-last: faster convolutions on GPUs, the same arithmetic; not faster on every CPU
    # (0.78-0.98x on a 2-core AMD EPYC without AVX-512; docs/performance.md, "Time and seeds")
    channels_last = device.type == "cuda"
    model = architectures.build(name, n_classes, profile).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    rng = np.random.default_rng([seed, architecture.seed_id, n_classes])
    # each model its own batch order, so that the members of an ensemble see different mixup pairs
    order = MixupBatches(len(data.labels), profile.train.batch_size,
                         np.random.default_rng([seed, 99, architecture.seed_id, n_classes]))
    history, done, seconds, state = [], 0, 0.0, None
    if ctx.rank == 0 and (folder / CHECKPOINT).is_file():
        state = load_checkpoint(folder / CHECKPOINT, name, n_classes, profile)
    state = ctx.from_rank_zero(state)  # several processes: rank 0 alone reads the checkpoint
    if state is not None:
        model.load_state_dict(state["model"])
    network = distributed.parallel(model, ctx)  # `model` itself in one process
    trained = getattr(network, "module", network)  # the model whose weights train, without DDP
    network = compiled(network, device)
    optimizer = _optimizer(trained, name, profile)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        order.load_state_dict({**state["batches"], "order": np.asarray(state["batches"]["order"])})
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        history, done, seconds = state["history"], state["epoch"], state["seconds"]

    start = time.perf_counter()
    last = epochs if stop_after is None else min(epochs, done + stop_after)
    bar = tqdm(total=(last - done) * steps, desc=f"{name} {n_classes} classes", unit="step",
               disable=not progress or ctx.rank > 0)
    logged = curves.TrainingCurves(folder, done * steps) if ctx.rank == 0 and last > done else None
    with torch_threads(TRAIN_THREADS), _clear_out_of_memory(name, n_classes, profile, share):
        for epoch in range(done, last):
            network.train()
            rates, losses = [], []  # losses kept on the device: reading each would make the CPU wait
            epoch_batches = batches.stream(data.log_mels, data.labels, order, steps, masked, share, n_classes,
                                           profile, rng, device, channels_last, later=later, first_step=epoch * steps)
            for step, (x, y) in zip(range(epoch * steps, (epoch + 1) * steps), epoch_batches):
                lr = learning_rate(step, steps, profile, keras_decay)
                for param_group in optimizer.param_groups:
                    param_group["lr"] = lr
                loss = training_step(network, optimizer, x, y, precision)
                rates.append((step, epoch, lr))
                losses.append(distributed.loss_sum(loss, ctx))
                bar.update()
            epoch_losses = [value / ctx.world_size for value in torch.stack(losses).tolist()]
            history += [(*rate, value) for rate, value in zip(rates, epoch_losses)]
            bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(epoch_losses):.3f}", refresh=False)
            seconds += time.perf_counter() - start
            start = time.perf_counter()
            if ctx.rank == 0:
                _save(folder, trained, optimizer, order, rng, history, epoch + 1, seconds,
                      _metadata(name, n_classes, profile), profile)
                logged.epoch(history[-steps:])
            ctx.barrier()  # no process goes on (or resumes) before the checkpoint is complete
    bar.close()
    if logged is not None:
        logged.close()
    if trained is not model:
        model.load_state_dict(trained.state_dict())
    model.eval()
    table = pd.DataFrame(history, columns=["step", "epoch", "lr", "loss"])
    return Run(name, n_classes, model, table, folder, seconds)


def training_step(network: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                  precision: str) -> torch.Tensor:
    """One update on the mixed batch `x` with soft targets `y`: soft-target cross-entropy on the
    logits (in float32 whatever the precision), backward, optimiser step. The loss is returned
    on the device, unread, so that a GPU step never waits for the CPU to look at it."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits = network(x)
    loss = -(y * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


@contextmanager
def torch_threads(count: int):
    """Run the body with `count` torch CPU threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _save(folder, model, optimizer, order, rng, history, epoch, seconds, metadata, profile: Profile) -> None:
    """Write the run's state, numpy values turned into plain ones (`_plain`) so that
    `read_checkpoint` loads it without unpickling any other object. The whole profile is stored
    too (`profile`, its sections as dicts): `asclib.predict` rebuilds the models from it."""
    from dataclasses import asdict

    state = {"model": model.state_dict(), "torch_rng": torch.get_rng_state(), **_plain({
        "optimizer": optimizer.state_dict(), "batches": order.state_dict(), "rng": rng.bit_generator.state,
        "history": history, "epoch": epoch, "seconds": seconds, "metadata": metadata, "profile": asdict(profile)})}
    serialised = io.BytesIO()  # written by Python, so that a full disk raises OSError (atomic_path's message)
    torch.save(state, serialised)
    with atomic_path(folder / CHECKPOINT) as temporary:
        temporary.write_bytes(serialised.getbuffer())


def _plain(value):
    """`value` with numpy arrays turned into lists and numpy scalars into Python numbers, inside
    dicts, lists and tuples (the batch order, the bit generator's state, the learning rates of
    the history and of the optimiser); tensors and plain values pass through unchanged."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def summary(history: pd.DataFrame, seconds: float, parameters: int, trained_on: str) -> pd.DataFrame:
    """One row describing a run from its `history` (one row per step): size, length, time, where
    it trained, and its training loss at the end of the last cosine cycle with the change from
    the cycle before (notebooks 04-06, docs/library.md)."""
    cycles = plateau_table(history)
    return pd.DataFrame({
        "parameters": parameters,
        "epochs": int(history["epoch"].max()) + 1,
        "steps": len(history),
        "training s": round(seconds),
        "trained on": trained_on,
        "loss, end of last cycle": cycles["loss over its last epoch"].iloc[-1],
        "change from previous cycle %": cycles["change from previous cycle %"].iloc[-1],
        f"levelled off (change under {PLATEAU_CHANGE:g} %)":
            "yes" if abs(cycles["change from previous cycle %"].iloc[-1]) < PLATEAU_CHANGE else "no",
    }, index=[0])


_SETS: dict = {}  # the training sets `fit_many` hands to its forked workers, by key


def _fit_in_worker(job: dict) -> None:
    fit(**{**job, "data": _SETS[job["data"]]}, progress=False)


def fit_many(jobs: list[dict], sets: dict, description: str, workers: int | None = None) -> None:
    """Train (or find finished) the runs `jobs`, each the keyword arguments of `fit` with `data`
    naming its training set in `sets`, `workers` at a time in forked processes (default: two
    on a CPU, one on a GPU). Each run is the same, bit for bit, as `fit` would train in the
    calling process; read them back with `fit` (instant when finished). Under torchrun the runs
    are trained one after the other, each by all the processes together."""
    from asclib.parallel import process_map

    ctx = distributed.context()
    workers = 1 if ctx.active else workers or default_workers()
    _SETS.update(sets)
    try:
        process_map(_fit_in_worker, jobs, workers, f"{description}, {workers} at a time", "model",
                    progress=ctx.rank == 0, long=True)
    finally:
        _SETS.clear()


def notebook_jobs(index: pd.DataFrame, profile: Profile, data_seed: int = 0) -> tuple[list[dict], dict]:
    """The runs of notebooks 04-06 under every training seed, as `fit_many` jobs with their
    training sets (`data_seed`: the seed of the corpus and of its offline augmentations)."""
    jobs = [{"name": name, "n_classes": n, "data": _set_key(name, n), "profile": profile, "seed": seed,
             "group": seed_group(seed)} for name, n in architectures.notebook_runs() for seed in profile.train.seeds]
    return jobs, _notebook_sets(index, profile, data_seed)


def unique_jobs(index: pd.DataFrame, profile: Profile, data_seed: int = 0,
                also: tuple[list[dict], dict] = ((), {})) -> tuple[list[dict], dict]:
    """Every run of notebooks 04-06 (all seeds) plus the jobs `also` (for instance
    `ablation.jobs`, notebook 09's) as `fit_many` jobs in the notebooks' order, each once (a job
    listed twice, the same run folder, is kept once), with their training sets."""
    with distributed.rank_zero_first():  # under torchrun, rank 0 writes missing features and augmentations
        jobs, sets = notebook_jobs(index, profile, data_seed)
    extra_jobs, extra_sets = also
    sets = {**sets, **extra_sets}
    unique: dict = {}
    for job in [*jobs, *extra_jobs]:  # a run listed twice keeps its first listing (a notebook's, so its label)
        unique.setdefault(job_folder(job, sets), job)
    ordered = sorted(unique.values(), key=lambda job: architectures.notebook_runs().index((job["name"], job["n_classes"])))
    return ordered, sets


def job_folder(job: dict, sets: dict) -> Path:
    """The run folder of a `fit_many` job whose training set is `sets[job["data"]]` (`run_folder`):
    two jobs with one folder are one run (`unique_jobs`, `store.finished`)."""
    keys = ("name", "n_classes", "profile", "seed", "augmentations", "group")
    return run_folder(**{key: job[key] for key in keys if key in job}, data=sets[job["data"]])


def _set_key(name: str, n_classes: int) -> tuple:
    """Which training set a notebook model trains on: its class count and offline augmentations."""
    return n_classes, augment.split(recipe_of(name))[1]


def _notebook_sets(index: pd.DataFrame, profile: Profile, data_seed: int) -> dict[tuple, TrainingSet]:
    """The training sets of the notebooks' models (`_set_key`), each made once."""
    keys = sorted({_set_key(name, n) for name, n in architectures.notebook_runs()})
    return {key: training_set(index, key[0], profile, key[1], seed=data_seed) for key in keys}
