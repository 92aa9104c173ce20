"""Command line over asclib: `python -m asclib --help`."""

from __future__ import annotations

import argparse
import sys

from asclib.config import PROFILE_NAMES
from asclib.launch import LaunchError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asclib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("reproduce", help="execute the numbered notebooks headless (papermill)")
    run.add_argument("--profile", choices=PROFILE_NAMES, default="quick")
    run.add_argument("--data-dir", default=None, help="dataset folder (default: the profile's)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--only", nargs="*", help="run only notebooks whose names start with these")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="extra",
                     help="another notebook parameter (YAML value), given to the notebooks that declare it")
    run.add_argument("--skip-bad-files", action="store_true",
                     help="leave out the clips the dataset check finds unusable (listed in "
                          "results/<profile>/excluded_files.csv) instead of stopping")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (steps, disk space, estimated times on this machine) and stop; "
                          "with --gpus, also the schedule of the trainings on that many GPUs (per node)")
    run.add_argument("--retrain-all", action="store_true",
                     help="train every committed run again to its end (CPU-hours) instead of a sample")
    _smoke_options(run)
    _launch_options(run)

    fit = commands.add_parser("train", help="train every run of the notebooks (04-06 under every seed, the "
                              "ablation of 09), one per CPU core (cached); under torchrun, each by all the "
                              "processes (one per GPU) together")
    fit.add_argument("--profile", choices=PROFILE_NAMES, default="quick")
    fit.add_argument("--data-dir", default=None, help="dataset folder (default: the profile's)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--only", nargs="+", metavar="LABEL", default=(),
                     help='train only the runs with these labels (as a launch names them: "resnet-10c seed 0", '
                          '"Table 3 +sa seed 1")')
    fit.add_argument("--more-seeds", type=int, default=0, metavar="K",
                     help="also train the next K seeds after the profile's, models and ablation alike: the "
                          "committed runs of a long training spread over sittings (results/<profile>/runs/)")
    _smoke_options(fit)
    _launch_options(fit)

    check = commands.add_parser("check", help="train a sample of the committed runs again (chosen by the commit id) "
                                "and compare them bit for bit with results/<profile>/runs/")
    check.add_argument("--profile", choices=PROFILE_NAMES, default="quick")
    check.add_argument("--data-dir", default=None, help="dataset folder (default: the profile's)")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--count", type=int, default=2, help="how many runs to train again (default: 2)")
    check.add_argument("--retrain-all", action="store_true",
                       help="train every committed run again to its end (CPU-hours) and compare its final predictions")

    label = commands.add_parser("predict", help="classify recordings with trained runs: scene, coarse class, "
                                "two-stage probabilities (see asclib/predict.py for how runs are chosen)")
    label.add_argument("files", nargs="+", metavar="FILE", help="audio files (any rate, any channel count)")
    label.add_argument("--runs", nargs="+", action="extend", metavar="DIR",
                       help="run folders or committed weights (*.pt), or folders of them (default: "
                            "runs/<profile>/seed-<first training seed>, the models of notebooks 04-06 under one "
                            "seed, else their committed weights in results/<profile>/runs/)")
    label.add_argument("--profile", choices=PROFILE_NAMES, default=None,
                       help="refuse runs of another profile (default: the runs' own profile)")
    label.add_argument("--out", default=None, metavar="FILE", help="also write the table (CSV, or --format dcase)")
    label.add_argument("--format", choices=("table", "dcase"), default="table", dest="output_format",
                       help="what --out holds: the table as CSV (default), or the DCASE submission file "
                            "(tab-separated: filename, scene_label, the ten scene probabilities, coarse_label)")
    label.add_argument("--cam", action="store_true", help="one PNG per file: spectrogram and class activation maps")
    label.add_argument("--cam-dir", default=None, help="where the PNGs go (default: beside --out, else here)")

    export = commands.add_parser("export", help="write trained runs' networks for inference outside PyTorch "
                                 "(ONNX, with a JSON of the feature settings; docs/running.md)")
    export.add_argument("--onnx", action="store_true", help="write ONNX (the one format so far; required)")
    export.add_argument("--runs", nargs="+", action="extend", metavar="DIR",
                        help="run folders or committed weights (*.pt), or folders of them (default: "
                             "runs/<profile>/seed-<first training seed>, the models of notebooks 04-06 under one "
                             "seed, else their committed weights in results/<profile>/runs/)")
    export.add_argument("--profile", choices=PROFILE_NAMES, default="quick", help="whose default runs (default: quick)")
    export.add_argument("--out", default=None, metavar="DIR", help="where the files go (default: exports/<profile>)")

    show = commands.add_parser("index", help="summarise a dataset folder in the DCASE layout")
    show.add_argument("data_dir", nargs="?", default=None)
    show.add_argument("--profile", choices=PROFILE_NAMES, default="quick")

    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileExistsError, FileNotFoundError, LaunchError) as error:  # DatasetError, AudioError included
        print(f"error: {error}", file=sys.stderr)
        return 2


def _smoke_options(command: argparse.ArgumentParser) -> None:
    """The options of a smoke run: they shorten every training and nothing else (config.reduce_training)."""
    smoke = command.add_argument_group(
        "smoke run", "shorten every training (the notebooks' models and the ablation's runs) to check the whole "
        "path quickly; feature sizes and model widths stay the profile's. Runs and results then go to "
        "runs/<profile>-smoke/ and results/<profile>-smoke/, never replacing the recipe's")
    smoke.add_argument("--epochs", type=int, metavar="N", help="epochs of every training, the end of a "
                       "cosine cycle: 2, 6, 14, 30, ...")
    smoke.add_argument("--steps-per-epoch", type=int, metavar="S", help="training steps per epoch")
    smoke.add_argument("--batch-size", type=int, metavar="B", help="batch size (departs from the recipe's 32; "
                       "a mixup step draws 2 x B training clips)")
    smoke.add_argument("--seeds", type=int, metavar="K", help="train only the first K training seeds of the "
                       "notebooks' models and of the ablation")


def _launch_options(command: argparse.ArgumentParser) -> None:
    """How the independent trainings are launched (asclib/launch.py; docs/running.md)."""
    from asclib.launch import LAUNCHERS

    group = command.add_argument_group(
        "launching the trainings", "the runs are independent: side by side in forked processes (pool), one per "
        "GPU through submitit's local executor (local), or as one Slurm job array (slurm)")
    group.add_argument("--launcher", choices=LAUNCHERS, help="default: local when several GPUs are visible, "
                       "else pool (one run per CPU core, one on a GPU)")
    group.add_argument("--gpus", type=int, metavar="N", help="local: GPUs to use (default: every visible one); "
                       "slurm: runs at a time per node (0: CPU jobs); dry run: GPUs per node of the schedule")
    group.add_argument("--nodes", type=int, default=1, metavar="M", help="slurm and dry run: nodes (default 1)")
    group.add_argument("--time-limit", type=float, metavar="HOURS", help="each job's time limit (required on "
                       "Slurm); a run that meets it, or is preempted, is requeued and resumes from its last epoch")
    group.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                       help="another setting of submitit's Slurm executor: partition=gpu, account=..., qos=..., "
                            "mem_gb=64, cpus_per_task=8, ...")
    group.add_argument("--card", default="H200", help="the card whose measured rates (asclib/gpu_rates.csv) time "
                       "the dry run's GPU schedule and the Slurm runs (default H200)")


def _launch(args: argparse.Namespace, profile, data_dir, only=()):
    """The launch settings of the command line (`launch.settings`)."""
    from asclib import launch

    return launch.settings(args.launcher, profile, data_dir, args.seed, args.gpus, args.nodes, args.time_limit,
                           _assignments(args.slurm, "--slurm"), only, args.card)


def _run(args: argparse.Namespace) -> int:
    import os

    from asclib.config import reduce_training
    from asclib.profiles import get_profile

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and args.command != "train":
        raise ValueError(f"only `train` runs under torchrun (several processes), not `{args.command}`")
    if args.command in ("reproduce", "train"):  # for this process and every notebook kernel and worker it starts
        reduce_training(args.epochs, args.steps_per_epoch, args.batch_size, args.seeds)
    if args.command in ("reproduce", "train") and not getattr(args, "dry_run", False):
        from asclib.launch import check

        check(args.launcher, args.nodes, args.time_limit)  # before any long work
        _assignments(args.slurm, "--slurm")
    # the profile, resolved once (after a smoke run's reductions) and passed down as a Profile
    profile = get_profile(args.profile) if getattr(args, "profile", None) else None
    if args.command == "reproduce" and args.dry_run:
        from asclib.plan import gpu_plan, plan
        from asclib.report import trains_ablation

        print(plan(profile, args.data_dir, args.seed))
        if args.gpus:
            print()
            print(gpu_plan(profile, args.gpus, args.nodes, args.card, args.data_dir, args.seed,
                           trains_ablation(args.only)))
    elif args.command == "reproduce":
        from asclib.report import reproduce

        manifest = reproduce(args.profile, args.data_dir, args.seed, args.only, _assignments(args.extra),
                             args.skip_bad_files, lambda data_dir: _launch(args, profile, data_dir), args.retrain_all)
        print(f"manifest written to {manifest}")
    elif args.command == "train":  # also under `torchrun --nproc_per_node=N -m asclib train` (asclib/distributed.py)
        from asclib import distributed, runs, synth
        from asclib.data import load_index
        from asclib.profiles import more_seeds

        profile = more_seeds(profile, args.more_seeds)

        with distributed.rank_zero_first():  # one process generates a missing corpus
            dataset = synth.dataset(profile, args.data_dir, args.seed)
            index = load_index(dataset, profile)
        runs.prepare(index, profile, args.seed, settings=_launch(args, profile, dataset, args.only))
        distributed.finish()
    elif args.command == "check":
        from asclib import synth
        from asclib.data import load_index
        from asclib.report import check_committed

        if args.count < 1:
            raise ValueError(f"--count {args.count}: expected at least 1 run")
        index = load_index(synth.dataset(profile, args.data_dir, args.seed), profile)
        check_committed(index, profile, args.seed, args.count, args.retrain_all)
    elif args.command == "predict":
        from pathlib import Path

        from asclib.predict import command

        cam_folder = (args.cam_dir or (Path(args.out).parent if args.out else Path.cwd())) if args.cam else None
        where = profile or get_profile("quick")  # `profile` (if given) also refuses runs of another profile
        return command(args.files, args.runs or [_first_seed_runs(where)], profile, args.out, cam_folder,
                       args.output_format)
    elif args.command == "export":
        from asclib.config import PROJECT_ROOT
        from asclib.export import command

        if not args.onnx:
            raise ValueError("export: name the format to write: --onnx")
        where = get_profile(args.profile)
        command(args.runs or [_first_seed_runs(where)], args.out or PROJECT_ROOT / "exports" / where.name)
    elif args.command == "index":
        from asclib.data import load_index

        index = load_index(args.data_dir, profile)
        print(index.pivot_table(index="device", columns="split", values="filename",
                                aggfunc="count", observed=False).to_string())
    return 0


def _first_seed_runs(profile):
    """The default runs of `predict` and `export`: runs/<profile>/seed-<first training seed>, the
    models of notebooks 04-06 under one seed, or where this machine has not trained them, the
    committed weights of the same runs (results/<profile>/runs/)."""
    from asclib import store
    from asclib.config import paths
    from asclib.train import seed_group

    trained = paths(profile).runs / seed_group(profile.train.seeds[0])
    return trained if trained.is_dir() else store.folder(profile)


def _assignments(items: list[str], option: str = "--set") -> dict:
    """`NAME=VALUE` strings (of `option`) to a dict, each value read as YAML (numbers, true/false, null, text)."""
    import yaml

    values = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name.isidentifier():
            raise ValueError(f"{option} expects NAME=VALUE with NAME a Python identifier, got {item!r}")
        values[name] = yaml.safe_load(value)
    return values


if __name__ == "__main__":
    sys.exit(main())
