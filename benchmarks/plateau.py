"""Benchmark: does a quick model's training loss level off if it trains longer? (issue 8, item 7)

Prints numbers; asserts nothing. Run:
    .venv/bin/python benchmarks/plateau.py --model resnet --classes 10 --epochs 126

Trains one model of notebooks 04-06 on the quick corpus (seed 0) for `--epochs` epochs (an
epoch count that ends a cosine cycle: 62, 126, 254, ...) instead of the profile's (a ResNet
optionally at another `--width`), through
`train.fit`, so the run is cached in `runs/quick/` like any other, and prints the training loss
at the end of every cosine cycle with its change from the cycle before (`train.plateau_table`)
and the run's time. The last change is what doubling the training bought: a run has levelled
off when it is under `train.PLATEAU_CHANGE` per cent.
"""

from __future__ import annotations

import argparse

from asclib import architectures, evaluation, profiles, synth, train
from asclib.profiles import get_profile
from asclib.data import load_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=tuple(architectures.REGISTRY), default="resnet")
    parser.add_argument("--classes", type=int, choices=(10, 3), default=10)
    parser.add_argument("--epochs", type=int, default=126)
    parser.add_argument("--width", type=int, default=None,
                        help="the model's width, if one number (default: the profile's for --classes); trades width for steps")
    args = parser.parse_args()
    if args.epochs not in train.cycle_ends(args.epochs):
        raise SystemExit(f"--epochs {args.epochs} does not end a cosine cycle: use one of {train.cycle_ends(1000)}")
    quick = get_profile("quick")
    if args.width is not None and not isinstance(quick.width(args.model, args.classes), int):
        raise SystemExit(f"--width: the {args.model}'s width is not one number")
    widths = {(args.model, args.classes): args.width} if args.width is not None else {}
    profile = profiles.resized(quick, widths, args.epochs)
    index = load_index(synth.dataset(profile, None, 0), profile)
    run = train.fit(args.model, args.classes, train.training_set(index, args.classes, profile, train.recipe_of(args.model)), profile, 0)
    width = f", width {args.width}" if args.width is not None else ""
    print(f"{args.model}, {args.classes} classes{width}, {args.epochs} epochs ({len(run.history)} steps), "
          f"{run.seconds:.0f} s of training on {train.device_name()}; the profile trains "
          f"{quick.epochs(args.model)} epochs")
    print(train.plateau_table(run.history).to_string())
    clips = index[index["split"] == "evaluate"]  # reported, never used to choose anything
    print(evaluation.accuracy(evaluation.predict(run.model, clips, args.classes, profile)).to_string())


if __name__ == "__main__":
    main()
