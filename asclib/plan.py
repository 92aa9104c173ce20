"""What `python -m asclib reproduce` will do, before it does it (`reproduce --dry-run`).

`plan(profile, data_dir)` lists the steps of a reproduce run in the order they happen: the
dataset check, the offline augmentations and the log-mel features (made by `runs.prepare`
before it trains), the five trainings of notebooks 04-06, the ablation of notebook 09, and the
notebooks that predict, fuse and write the tables and figures. Each step comes with the folder
it writes, the disk space it needs and the time it should take on this machine; the free space
of every file system written to is compared with what the plan needs.

Sizes are computed from the clip counts (the dataset's csv files; the synthetic corpus's plan
when it is not generated yet; the official fold-1 counts when the real set's folder is absent)
and the profile: wav bytes from rate, length and sample format, log-mels as float32 (n_mels x
frames), checkpoints from the models' parameter counts. Times are estimates: `measure` times
the real code on three scratch clips and a few training steps of every model on the device
training uses (the GPU if there is one), and the plan scales them by the numbers of clips and
steps, assuming the clip work spreads evenly over the CPU cores. They leave out disk speed,
other load on the machine and the notebooks' own plotting.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from asclib.config import PROJECT_ROOT, Profile, paths
from asclib.data import (DEVELOPMENT_DEVICES, DEVICES, MINOR_TRAINING_DEVICES, SCENES, SPLITS, DatasetError,
                         clip_problems, read_layout)

# The official fold-1 split of TAU Urban Acoustic Scenes 2020 Mobile, development set (23,040
# clips): clips per (split, device), for a plan made before the real set is at hand.
OFFICIAL_FOLD1 = {
    ("train", "a"): 10_215, **{("train", d): 750 for d in MINOR_TRAINING_DEVICES},
    **{("evaluate", d): 330 for d in DEVELOPMENT_DEVICES},
    ("unused", "a"): 3_855, **{("unused", d): 750 for d in ("s4", "s5", "s6")},
}
_HISTORY_BYTES = 32  # one (step, epoch, lr, loss) row of a checkpoint's history, as torch.save stores it
_NPY_HEADER = 128
_WAV_HEADER = 44
_AFFORDABLE = 10.0  # seconds a full-batch CPU measurement of one model may take; beyond, scale batch 1


@dataclass(frozen=True)
class Timings:
    """Seconds per unit of work on this machine, from `measure`. Training keys are (name,
    n_classes, ModelConfig): the ablation's ResNet may be narrower than notebook 04's."""

    device: str  # what training runs on (`train.device_name`)
    header: float  # the dataset check of one clip
    features: float  # one clip's log-mel, in one process
    augment: dict  # offline method -> one augmented clip, in one process
    synth: float | None  # one clip of the synthetic corpus, in one process (None: not measured)
    step: dict  # training key -> one training step at the profile's batch size
    forward: dict  # training key -> one clip's prediction at full length
    seconds: float  # how long measuring took


def measure(profile: Profile, corpus: bool = False) -> Timings:
    """Time the pipeline's units of work on this machine with the real code, on three scratch
    clips of the profile's format: a header check, a log-mel, one clip of each offline
    augmentation, one synthetic clip (if `corpus`), and training steps and a prediction of every
    model the plan trains: a few seconds for `quick`, under a minute for `paper`."""
    from threadpoolctl import threadpool_limits

    from asclib import augment, features, train
    from asclib.data import load_audio

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="asclib-plan-") as scratch, threadpool_limits(limits=1):
        folder = Path(scratch)
        clips = _scratch_clips(folder, profile)
        header = _best(lambda: clip_problems(clips[0], profile.audio), repeats=20)
        log_mel = _best(lambda: features.log_mel(load_audio(clips[1], profile), profile))
        augmented = {method: _augment_seconds(method, clips, profile, folder) for method in augment.names("offline")}
        synth_clip = None
        if corpus:
            from asclib import synth

            location = synth.make_location(profile, 0, SCENES[0], 0)
            synth_clip = _best(lambda: synth.record_segment(
                profile, 0, synth.render_segment(profile, 0, location, 0), 0, "a"))
        step, forward = {}, {}
        for name, n_classes, sized in _trainings(profile):
            key = (name, n_classes, sized.models)
            if key not in step:
                step[key], forward[key] = _training_seconds(name, n_classes, sized, folder / "runs")
    return Timings(train.device_name(), header, log_mel, augmented, synth_clip, step, forward,
                   time.perf_counter() - start)


def _best(function, repeats: int = 2) -> float:
    """The shortest of `repeats` timings of `function()`: the first call also pays for imports
    and warm-up."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def _scratch_clips(folder: Path, profile: Profile, count: int = 3) -> list[Path]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    clips = [folder / f"clip{k}.wav" for k in range(count)]
    for clip in clips:
        sf.write(clip, 0.1 * rng.standard_normal(profile.audio.n_samples), profile.audio.sample_rate,
                 subtype=profile.audio.subtype)
    return clips


def _augment_seconds(method: str, clips: list[Path], profile: Profile, folder: Path) -> float:
    """Seconds per clip that `method` makes, as `augment.generate_offline` makes it (for a
    substituting method, its copies of one clip over their count): read, transform, write, and
    the carried log-mel where the method has one. The shared context holds stand-ins of the
    right size: flat correction coefficients, one room response of 1 s, the scratch clips as
    mixing partners, the real microphone responses."""
    import soundfile as sf

    from asclib import augment, microphones
    from asclib.data import load_audio

    sr = profile.audio.sample_rate
    rng = np.random.default_rng(0)
    room = rng.standard_normal(sr) * np.exp(-6.9 * np.arange(sr) / sr)  # decays by 60 dB in 1 s
    context = {"profile": profile, "coefficients": np.ones(profile.features.n_fft // 2 + 1), "rirs": [room],
               "same_scene": {"park": np.array([str(clip) for clip in clips])}, "source": str(clips[0]),
               "scene": "park", "microphones": microphones.training_pool()}
    chosen = augment.METHODS[method]

    def one_clip():
        audio = load_audio(clips[0], profile).astype(np.float64)
        for copy, (out, _) in enumerate(augment.apply(method, audio, sr, rng, context)):
            sf.write(folder / f"{method}{copy}.wav", out.astype(np.float32), sr, subtype=profile.audio.subtype)
        if chosen.log_mel is not None:
            chosen.log_mel(audio, context)

    return _best(one_clip) / _clips_per_source(method, profile)


def _trainings(profile: Profile) -> list[tuple[str, int, Profile]]:
    """Every model the pipeline trains, with the profile it is trained with."""
    from asclib import ablation, architectures

    return [(name, n, profile) for name, n in architectures.notebook_runs()] + [("resnet", 10, ablation.budget(profile))]


def _training_seconds(name: str, n_classes: int, profile: Profile, runs: Path) -> tuple[float, float]:
    """Seconds of one training step at the profile's batch size, and of one clip's prediction.

    The steps are `train.fit`'s own, on random log-mels, in a scratch runs folder: one epoch of
    warm-up, then one timed epoch (resumed from the first's checkpoint). On a CPU the steps run
    at batch 1 first and, where a full batch would take long (the paper profile), the time is
    scaled by the batch size: a convolution on a CPU costs about the same per example.
    """
    import torch

    from asclib.features import input_frames

    batch = profile.train.batch_size
    if torch.cuda.is_available():
        seconds, model = _timed_fit(name, n_classes, profile, batch, 3, runs)
    else:
        seconds, model = _timed_fit(name, n_classes, profile, 1, 1, runs)
        if 4 * batch * seconds < _AFFORDABLE:
            seconds, model = _timed_fit(name, n_classes, profile, batch, 2, runs)
        else:
            seconds *= batch
    clip = torch.zeros((1, 3, profile.features.n_mels, input_frames(profile)),
                       device=next(model.parameters()).device)
    with torch.no_grad():
        forward = _best(lambda: float(model(clip).sum()))
    return seconds, forward


def _timed_fit(name: str, n_classes: int, profile: Profile, batch: int, steps: int, runs: Path):
    from asclib import train
    from asclib.features import frame_count

    sized = dataclasses.replace(profile, train=dataclasses.replace(profile.train, batch_size=batch,
                                                                   steps_per_epoch=steps))
    rng = np.random.default_rng(0)
    data = train.TrainingSet(rng.random((2 * batch, profile.features.n_mels, frame_count(profile)), dtype=np.float32),
                             np.arange(2 * batch) % n_classes, f"plan-{batch}")
    with mock.patch.dict(os.environ, {"ASC_RUNS_DIR": str(runs)}):
        warm = train.fit(name, n_classes, data, sized, stop_after=1, progress=False)
        timed = train.fit(name, n_classes, data, sized, stop_after=1, progress=False)
    return (timed.seconds - warm.seconds) / steps, timed.model


@dataclass
class Plan:
    """The steps of a reproduce run, with disk space and estimated times (`plan`)."""

    profile: str
    data: str  # where the clip counts come from, in words
    steps: pd.DataFrame  # step, writes (a folder, "" for none), amount, disk_bytes, seconds
    disk: pd.DataFrame  # per file system written to: folders, needed_bytes, free_bytes
    seconds: float  # the whole run, with trainings `workers` at a time as train.fit_many runs them
    workers: int
    timings: Timings
    notes: list[str]

    def __str__(self) -> str:
        table = pd.DataFrame({"step": self.steps["step"], "writes": self.steps["writes"].map(_short),
                              "amount": self.steps["amount"], "disk": self.steps["disk_bytes"].map(_size),
                              "time": self.steps["seconds"].map(_duration)})
        total = pd.DataFrame([{"step": "total", "writes": "", "amount": "",
                               "disk": _size(self.steps["disk_bytes"].sum()), "time": _duration(self.seconds)}])
        disk = pd.DataFrame({"file system of": self.disk["folders"], "needed": self.disk["needed_bytes"].map(_size),
                             "free": self.disk["free_bytes"].map(_size)})
        lines = [f"Plan of `python -m asclib reproduce --profile {self.profile}` (dry run: nothing was done)",
                 f"Data: {self.data}",
                 f"Times measured in {self.timings.seconds:.0f} s: training on {self.timings.device}, "
                 f"{self.workers} run(s) at a time; audio and features on {os.cpu_count()} CPU core(s).", "",
                 _aligned(pd.concat([table, total]), right=("disk", "time")), "",
                 "Disk space the run writes (less where results are already made):",
                 _aligned(disk, right=("needed", "free"))]
        lines += [f"WARNING: not enough free space for {row.folders}: {_size(row.needed_bytes)} needed, "
                  f"{_size(row.free_bytes)} free" for row in self.disk.itertuples()
                  if row.needed_bytes > row.free_bytes]
        lines += [f"Note: {note}" for note in self.notes]
        lines.append("Times are estimates scaled from a short measurement; they leave out disk speed, other load "
                     "on the machine and the notebooks' plotting.")
        return "\n".join(lines)


def plan(profile: Profile, data_dir: str | Path | None = None, seed: int = 0,
         timings: Timings | None = None) -> Plan:
    """The steps `python -m asclib reproduce` would run for `profile` on `data_dir`, with what
    each writes, its disk space and its estimated time (from `measure`, unless `timings` are
    given). Nothing is written outside a scratch folder; the corpus is not generated."""
    from asclib import augment, train
    from asclib.features import frame_count

    clips, data, generate, notes = _clips(profile, data_dir, seed)
    timings = timings or measure(profile, corpus=generate)
    folders, cores = paths(profile), os.cpu_count() or 1
    wav = _WAV_HEADER + profile.audio.n_samples * _sample_bytes(profile.audio.subtype)
    npy = _NPY_HEADER + 4 * profile.features.n_mels * frame_count(profile)
    listed, train_clips, evaluate = int(clips.to_numpy().sum()), clips.loc["train"], int(clips.loc["evaluate"].sum())
    rows = []

    def add(step, writes, amount, disk_bytes, seconds):
        rows.append({"step": step, "writes": str(writes), "amount": amount, "disk_bytes": int(disk_bytes),
                     "seconds": float(seconds)})

    if generate:
        add("generate the synthetic corpus", folders.data, f"{listed:,} clips", listed * wav,
            listed * timings.synth / cores)
    add("check the dataset (headers)", "", f"{listed:,} files", 0, listed * timings.header)
    sources = _sources(train_clips, profile)
    for method, count in sources.items():
        carried = npy if augment.METHODS[method].log_mel is not None else 0
        seconds = count * timings.augment[method] / cores
        if method == "spectrum_correction":  # its coefficients first: two STFTs per pair, in one process
            pairs = sum(min(int(train_clips[d]), profile.augment.correction_pairs_per_device)
                        for d in MINOR_TRAINING_DEVICES)
            seconds += 2 * pairs * timings.features
        add(f"augmentation: {method}", folders.augmented / method, f"{count:,} clips", count * (wav + carried),
            seconds)
    featured = int(train_clips.sum()) + evaluate + sum(sources.values())
    computed = featured - sources["spectrum_correction"]  # those clips carry their log-mels
    add("log-mel features", folders.cache / "features", f"{featured:,} clips", featured * npy,
        computed * timings.features / cores)

    runs = run_list(profile, train_clips, sources)
    runs["seconds"] = [row.steps * timings.step[(row.name, row.n_classes, row.trained.models)]
                       for row in runs.itertuples()]
    for step, group in runs.groupby("step", sort=False):
        first = group.iloc[0]
        add(step, folders.runs, f"{len(group)} x {first.steps:,} steps",
            sum(_checkpoint_bytes(r.name, r.n_classes, r.trained, r.steps) for r in group.itertuples()),
            group["seconds"].sum())
    forward = sum(timings.forward[(row.name, row.n_classes, row.trained.models)] for row in runs.itertuples())
    add("notebooks: predictions, fusion, tables, figures", folders.results,
        f"{evaluate:,} clips x {len(runs)} runs", 0, evaluate * forward)
    steps = pd.DataFrame(rows)

    workers = train.default_workers()
    seconds = (steps["seconds"].sum() - runs["seconds"].sum()
               + schedule(list(runs["seconds"]), workers)[2])  # runs.prepare: one pool for all
    return Plan(profile.name, data, steps, _free_space(steps, folders), seconds, workers, timings, notes)


def _sources(train_clips: pd.Series, profile: Profile) -> dict[str, int]:
    """The clips each offline augmentation makes: one per training clip (device A's alone for
    some), or `substitute_copies` per clip for a substituting method."""
    from asclib import augment

    return {method: int(train_clips["a"] if chosen.device_a_only else train_clips.sum()) * _clips_per_source(method, profile)
            for method, chosen in augment.METHODS.items() if chosen.kind == "offline"}


def _clips_per_source(method: str, profile: Profile) -> int:
    """Clips an offline method makes of one training clip: `substitute_copies` for a substituting one, else one."""
    from asclib import augment

    return profile.augment.substitute_copies if augment.METHODS[method].substitutes else 1


def label(job: dict) -> str:
    """A run's name for people: "resnet-10c seed 0", or its Table 3 row ("Table 3 +sa seed 1")."""
    from asclib import ablation

    recipe = job.get("augmentations")
    if recipe is None:
        return f"{job['name']}-{job['n_classes']}c seed {job['seed']}"
    row = {tuple(methods): name for name, methods in ablation.rows().items()}.get(tuple(recipe), "+".join(recipe))
    return f"Table 3 {row} seed {job['seed']}"


def schedule(seconds: list[float], slots: int, busy: list[float] = ()) -> tuple[list[int], list[float], float]:
    """Runs of `seconds` handed out in that order to `slots` workers (GPUs), each taking the next
    run when it is free; `busy`: seconds each worker still needs for what it runs now. Returns
    each run's worker, each run's start, and the wall time."""
    free = sorted([*busy, *[0.0] * (slots - len(busy))])[:slots] if slots else []
    where, starts = [], []
    for duration in seconds:
        slot = free.index(min(free))
        where.append(slot)
        starts.append(free[slot])
        free[slot] += duration
    return where, starts, max(free, default=0.0)


def run_list(profile: Profile, train_clips: pd.Series, sources: dict, with_ablation: bool = True) -> pd.DataFrame:
    """Every training run of a reproduce run, once, in the order `train.unique_jobs` lists them:
    its label (`label`), the plan's step it belongs to, name, n_classes, the profile it
    trains with (`trained`), and its steps. `train_clips`: training clips per device; `sources`:
    the clips each offline augmentation adds (a substituting one adds none); the ablation's runs
    (notebooks 09 and 12) unless not `with_ablation`."""
    from asclib import ablation, architectures, augment, train

    def steps(name, sized, recipe) -> int:
        added = sum(sources[m] for m in augment.split(recipe)[1] if not augment.METHODS[m].substitutes)
        return sized.epochs(name) * train.steps_per_epoch(sized, int(train_clips.sum()) + added)

    rows = []
    for name, n in architectures.notebook_runs():
        entry = architectures.get(name)
        for seed in profile.train.seeds:
            rows.append({"label": label({"name": name, "n_classes": n, "seed": seed}), "name": name,
                         "step": f"train {name}, {n} classes, {len(profile.train.seeds)} seed(s) ({entry.notebook})",
                         "n_classes": n, "trained": profile, "steps": steps(name, profile, train.recipe_of(name))})
    seeds = profile.ablation.seeds
    for row, recipe in ablation.rows().items() if with_ablation else ():
        for seed in seeds:
            job = ablation.run_arguments(row, recipe, seed, profile)
            if job["group"] == train.seed_group(seed) and seed in profile.train.seeds:
                continue  # notebook 04's own run (train.unique_jobs trains it once)
            rows.append({"label": label(job), "step": f"ablation: {row}, {len(seeds)} seeds (09)", "name": "resnet",
                         "n_classes": 10, "trained": job["profile"], "steps": steps("resnet", job["profile"], recipe)})
    return pd.DataFrame(rows)


GPU_RATES = Path(__file__).with_name("gpu_rates.csv")  # measured training samples/s of the paper's networks


def gpu_rates(card: str) -> tuple[dict[str, float], str]:
    """Training samples/s of the paper profile's models ("resnet-10c", ...) on `card` (a card of
    `GPU_RATES`), and where they were measured."""
    table = pd.read_csv(GPU_RATES)
    chosen = table[table["card"].str.lower() == card.lower()]
    if chosen.empty:
        raise ValueError(f"no measured rates for card {card!r} in {GPU_RATES.name}: expected one of "
                         f"{sorted(table['card'].unique())}")
    return dict(zip(chosen["model"], chosen["samples_per_s"])), "; ".join(chosen["measured"].unique())


@dataclass
class GpuPlan:
    """The training runs laid out over `gpus` GPUs on each of `nodes` machines, longest first,
    each GPU taking the next run when it is free (`gpu_plan`)."""

    profile: str
    card: str
    measured: str  # where the rates come from
    gpus: int
    nodes: int
    runs: pd.DataFrame  # label, hours, node, gpu, start_h, end_h (in the order they are handed out)
    wall_hours: float
    paper_rows_wall_hours: float  # the same without Table 3's rows beyond the paper
    paper_rows_best_hours: float  # what no layout of those runs beats (`_best_wall`)

    def __str__(self) -> str:
        table = self.runs.assign(**{c: self.runs[c].map(lambda h: f"{h:.2f}") for c in ("hours", "start_h", "end_h")})
        total, longest, slots = self.runs["hours"].sum(), self.runs["hours"].max(), self.gpus * self.nodes
        best, pair = _best_wall(list(self.runs["hours"]), slots)
        lines = [f"Schedule of the {len(self.runs)} training runs of `reproduce --profile {self.profile}` on "
                 f"{self.nodes} node(s) x {self.gpus} GPU(s) ({self.card}), one run per GPU, longest first",
                 f"Rates: {self.measured}", "", _aligned(table, right=("hours", "start_h", "end_h")), "",
                 f"Wall time of the trainings: {self.wall_hours:.1f} h ({total:.1f} GPU-hours). No layout of whole runs "
                 f"does better than {best:.1f} h, the largest of: the GPU-hours over "
                 f"{slots} GPU(s) ({total / slots:.1f} h), the longest run ({longest:.1f} h)"
                 + (f", and the {_ordinal(slots)} and {_ordinal(slots + 1)} longest runs on one GPU ({pair:.1f} h)"
                    if pair else "")]
        if self.paper_rows_wall_hours < self.wall_hours:
            lines.append(f"Without Table 3's rows beyond the paper: {self.paper_rows_wall_hours:.1f} h (no layout "
                         f"of whole runs does better than {self.paper_rows_best_hours:.1f} h)")
        if self.wall_hours <= max(longest, pair) + 1e-9 and slots > 1:  # not the GPU-hours: the longest runs
            lines.append("The longest runs set the wall time: only splitting them over several GPUs (torchrun, "
                         "docs/running.md) would shorten it.")
        lines.append("Then each run's evaluation predictions (minutes) and the notebooks (on one machine, "
                     "under an hour). Times are steps x batch / measured samples/s of the real training loop.")
        return "\n".join(lines)


def run_seconds(profile: Profile, data_dir=None, seed: int = 0, card: str | None = None,
                with_ablation: bool = True) -> dict[str, float]:
    """Every training run's estimated seconds, by label (`label`): from the rates
    measured on `card` (`gpu_rates`, the paper profile's networks), or else from timings made
    now on this machine (`measure`)."""
    return _seconds(_labelled_runs(profile, data_dir, seed, with_ablation), profile, card)


def _seconds(runs: pd.DataFrame, profile: Profile, card: str | None) -> dict[str, float]:
    """`run_seconds` of the runs of `run_list`."""
    if card is not None:
        rates = gpu_rates(card)[0]
        return {r.label: r.steps * profile.train.batch_size / rates[f"{r.name}-{r.n_classes}c"]
                for r in runs.itertuples()}
    timings = measure(profile)
    return {r.label: r.steps * timings.step[(r.name, r.n_classes, r.trained.models)] for r in runs.itertuples()}


def _labelled_runs(profile: Profile, data_dir, seed: int, with_ablation: bool) -> pd.DataFrame:
    clips = _clips(profile, data_dir, seed)[0]
    return run_list(profile, clips.loc["train"], _sources(clips.loc["train"], profile), with_ablation)


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def gpu_plan(profile: Profile, gpus: int, nodes: int = 1, card: str = "H200", data_dir=None,
             seed: int = 0, with_ablation: bool = True) -> GpuPlan:
    """Lay the training runs of `reproduce` out over `nodes` x `gpus` GPUs with the rates
    measured on `card` (`gpu_rates`; the paper profile's networks), as `launch.run` hands them
    out: longest first, one per GPU. Nothing is measured or written."""
    from asclib import ablation

    if gpus < 1 or nodes < 1:
        raise ValueError(f"--gpus and --nodes must be at least 1, got {gpus} and {nodes}")
    if profile.name != "paper":
        raise ValueError(f"the measured GPU rates ({GPU_RATES.name}) are the paper profile's networks; "
                         f"a GPU schedule of the {profile.name} profile would not be a measurement")
    measured = gpu_rates(card)[1]
    runs = _labelled_runs(profile, data_dir, seed, with_ablation)
    runs["hours"] = runs["label"].map(_seconds(runs, profile, card)) / 3600
    runs = runs.sort_values("hours", ascending=False, kind="stable").reset_index(drop=True)
    where, starts, wall = schedule(list(runs["hours"]), gpus * nodes)
    beyond = runs["label"].map(lambda run: any(run.startswith(f"Table 3 {row} seed") for row in ablation.BEYOND_PAPER))
    paper_rows = list(runs.loc[~beyond, "hours"])
    paper_wall = schedule(paper_rows, gpus * nodes)[2]
    laid = pd.DataFrame({"run": runs["label"], "hours": runs["hours"], "node": [w // gpus for w in where],
                         "gpu": [w % gpus for w in where], "start_h": starts,
                         "end_h": [a + b for a, b in zip(starts, runs["hours"])]})
    return GpuPlan(profile.name, card, measured, gpus, nodes, laid, wall, paper_wall,
                   _best_wall(paper_rows, gpus * nodes)[0])


def _best_wall(hours: list[float], slots: int) -> tuple[float, float]:
    """A wall time that no layout of whole runs on `slots` GPUs beats: the largest of the
    GPU-hours over the GPUs, the longest run, and the slots-th and (slots + 1)-th longest runs
    together (of the slots + 1 longest, two share a GPU); and that last sum."""
    ranked = sorted(hours, reverse=True)
    pair = ranked[slots - 1] + ranked[slots] if len(ranked) > slots else 0.0
    return max(sum(hours) / slots, max(hours, default=0.0), pair), pair


def _clips(profile: Profile, data_dir, seed: int) -> tuple[pd.DataFrame, str, bool, list[str]]:
    """Clips per split (rows) and device (columns), where the counts come from, whether the
    synthetic corpus will be generated first, and notes on what the run will meet."""
    from asclib import synth

    folder = Path(data_dir) if data_dir is not None else paths(profile).data
    if folder.is_dir():
        try:
            index = read_layout(folder)
            return _counts(index), f"{folder}: {len(index):,} clips listed in its csv files", False, []
        except DatasetError as error:
            notes = [f"the dataset folder cannot be read, so reproduce will stop at its check: {error}"]
    elif profile.name == "quick" and data_dir is None:
        index = synth.plan_corpus(profile, seed)
        return (_counts(index), f"{folder} does not exist yet: reproduce will generate the synthetic corpus there "
                f"first ({len(index):,} clips)", True, [])
    elif data_dir is None:
        notes = ["the paper profile needs --data-dir, the folder of the real development set"]
    else:
        notes = [f"dataset folder not found: {folder}; reproduce will stop at the dataset check"]
    if profile.name == "quick":
        return _counts(synth.plan_corpus(profile, seed)), "the synthetic corpus's counts (assumed)", False, notes
    counts = pd.Series(OFFICIAL_FOLD1).unstack(fill_value=0)
    return (_counts(counts), "the official fold-1 counts of TAU Urban Acoustic Scenes 2020 Mobile (assumed)", False,
            notes)


def _counts(clips: pd.DataFrame) -> pd.DataFrame:
    """Clips per split and device, from an index (one row per clip) or a table of counts."""
    if "split" in clips:
        clips = pd.crosstab(clips["split"].astype(str), clips["device"].astype(str))
    return clips.reindex(index=list(SPLITS), columns=list(DEVICES), fill_value=0)


_SAMPLE_BYTES = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4}


def _sample_bytes(subtype: str) -> int:
    if subtype not in _SAMPLE_BYTES:
        raise ValueError(f"cannot size wav files of subtype {subtype!r}: expected one of {list(_SAMPLE_BYTES)}")
    return _SAMPLE_BYTES[subtype]


@lru_cache(maxsize=None)
def _model_bytes(name: str, n_classes: int, profile: Profile) -> int:
    """Weights and buffers, and one momentum buffer per parameter (float32); the model is built
    on PyTorch's meta device, which allocates and initialises nothing."""
    import torch

    from asclib import architectures

    with torch.device("meta"):
        model = architectures.build(name, n_classes, profile)
    return (sum(t.numel() * t.element_size() for t in model.state_dict().values())
            + sum(p.numel() * p.element_size() for p in model.parameters()))


def _checkpoint_bytes(name: str, n_classes: int, profile: Profile, steps: int) -> int:
    """About the size of a finished run's checkpoint: the model, its optimiser and its history."""
    return _model_bytes(name, n_classes, profile) + steps * _HISTORY_BYTES


def _free_space(steps: pd.DataFrame, folders) -> pd.DataFrame:
    """Per file system written to: the profile's folders on it (`config.paths`), the bytes the
    plan writes there and the bytes free. A folder not made yet counts on the file system of its
    nearest existing parent."""
    systems, written = {}, steps[steps["writes"] != ""]
    for root in dataclasses.astuple(folders):
        mine = written[[Path(folder).is_relative_to(root) for folder in written["writes"]]]
        if mine.empty:
            continue
        existing = root
        while not existing.exists():
            existing = existing.parent
        entry = systems.setdefault(existing.stat().st_dev, {"folders": [], "needed_bytes": 0,
                                                             "free_bytes": shutil.disk_usage(existing).free})
        entry["folders"].append(_short(str(root)))
        entry["needed_bytes"] += int(mine["disk_bytes"].sum())
    return pd.DataFrame([{**entry, "folders": ", ".join(entry["folders"])} for entry in systems.values()])


def _short(folder: str) -> str:
    """A folder relative to the repository when inside it; "-" for none."""
    if not folder:
        return "-"
    path = Path(folder)
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else folder


def _aligned(table: pd.DataFrame, right=()) -> str:
    """`table` as text, columns left-aligned except those in `right`."""
    widths = {c: max(len(c), table[c].astype(str).str.len().max()) for c in table}
    formatters = {c: (lambda value, w=w: f"{value:>{w}}") if c in right else (lambda value, w=w: f"{value:<{w}}")
                  for c, w in widths.items()}
    headers = [c.rjust(widths[c]) if c in right else c for c in table]
    return table.to_string(index=False, formatters=formatters, header=headers, justify="left")


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
