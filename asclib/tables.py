"""The paper's result tables from the trained runs: one row per system, the mean over training
seeds with the seeds' spread, gains with intervals over seeds and clips (notebooks 07 and 08).

A *system* is a filename-indexed probability table (`asclib.fusion`): a single model's
predictions, an ensemble or a two-stage fusion. Systems are formed within one training seed
(an ensemble of the seed-k models, their two-stage fusion with the seed-k 3-class ensemble) and
then evaluated seed by seed; a table row is the mean over seeds. `gains` measures the
difference between two systems on the same seeds and clips (`metrics.seeded_gain`), and
`describe_gains` says in words which differences the data supports. `ensemble_table` and
`two_stage_table` are what notebooks 07 and 08 save as `07_table1.csv` and `08_table2.csv`;
`paper_tables` computes them all again for tests/test_pins.py, which holds their values.
`model_section` is one model's section of notebooks 04-06.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from asclib import ablation, architectures, evaluation, features, fusion, metrics, models, paper, plots, result_files, store, train
from asclib.config import Profile
from asclib.profiles import get_profile

GAIN_COLUMNS = ("compared with", "gain", "gain low", "gain high")
SEED_SPREAD_OF = ("s7-s11", "overall")  # the columns whose seed standard deviation a table shows beside them
BySeed = dict[int, dict[str, pd.DataFrame]]  # training seed -> system name -> probability table


def load_models(profile: Profile, index: pd.DataFrame, n_classes: int, data_seed: int = 0) -> tuple[BySeed, pd.DataFrame]:
    """The probability tables of the paper's `n_classes` models by training seed and model name
    (the runs of notebooks 04-06; trained if missing), and the truth (device, label) of their clips."""
    by_seed = store.seed_predictions(index, profile, n_classes, data_seed)
    tables = {seed: {name: fusion.probabilities(table, f"{name}-{n_classes}c, seed {seed}")
                     for name, table in predictions.items()} for seed, predictions in by_seed.items()}
    first = next(iter(by_seed.values()))
    name = next(iter(first))
    return tables, fusion.truth(first[name], f"{name}-{n_classes}c")


MEAN, SPREAD = "mean over seeds", "seed std"  # the last two rows of a model's accuracy table


@dataclass
class ModelResults:
    """One model of notebooks 04-06 under every training seed: its runs and their evaluation
    predictions, by seed, and what the notebook shows of them."""

    name: str
    n_classes: int
    profile: Profile
    runs: dict[int, store.StoredRun]

    @classmethod
    def of(cls, name: str, n_classes: int, index: pd.DataFrame, profile: Profile,
           data_seed: int = 0) -> "ModelResults":
        """Read (or train, where its entry is missing) the model under every seed of `profile.train.seeds`."""
        return cls(name, n_classes, profile, store.model_runs(name, n_classes, index, profile, data_seed))

    @property
    def file_prefix(self) -> str:
        """Its result files' names start with this: its notebook's number, model, classes ("04_resnet-10c")."""
        return f"{architectures.get(self.name).notebook[:2]}_{self.name}-{self.n_classes}c"

    @property
    def title(self) -> str:
        return f"{architectures.get(self.name).title}, {self.n_classes} classes"

    def curves(self):
        """The training curves of the first seed (the others look alike: see `training`)."""
        seed, run = next(iter(self.runs.items()))
        return plots.training_curves(run.history, f"{self.title} (seed {seed})")

    def training(self) -> pd.DataFrame:
        """`train.summary` of every seed's run, one row per seed."""
        parameters = models.count_parameters(architectures.build(self.name, self.n_classes, self.profile))
        return pd.concat([train.summary(run.history, run.seconds, parameters, run.trained_on).set_axis(
            [f"{self.title}, seed {seed}"]) for seed, run in self.runs.items()])

    def accuracy(self) -> pd.DataFrame:
        """Accuracy per device and group of every seed's run, their mean and standard deviation,
        and the paper's row; the mean is checked for plausibility (`metrics.check_plausible`)."""
        seeds = pd.concat([evaluation.accuracy(run.predictions).set_axis([f"seed {seed}"])
                           for seed, run in self.runs.items()])
        summary = pd.concat([seeds, seeds.mean().to_frame(MEAN).T.round(1),
                             seeds.std(ddof=1).to_frame(SPREAD).T.round(2)])
        metrics.check_plausible(summary.loc[[MEAN]], self.n_classes)
        return pd.concat([summary, *paper.reference_rows([self.name], self.n_classes)])

    def confusion(self):
        """Confusion counts on the evaluation split, summed over the seeds."""
        classes = list(train.classes_of(self.n_classes))
        predictions = pd.concat([run.predictions for run in self.runs.values()])
        counts = metrics.confusion(predictions["label"], predictions[classes].idxmax(axis=1), classes)
        return plots.heatmap(counts, f"{self.title}: confusion on the evaluation split, {len(self.runs)} seeds "
                                     "together (rows: true class)", fmt="d", cmap="Blues")

    def save_predictions(self) -> list:
        """Write each seed's predictions to `results/<profile>/predictions/<prefix>-seed<k>.csv`
        (`file_prefix`: "04_resnet-10c-seed0.csv")."""
        return [evaluation.save_predictions(run.predictions, f"{self.file_prefix}-seed{seed}", self.profile)
                for seed, run in self.runs.items()]


def model_section(name: str, n_classes: int, index: pd.DataFrame, profile: Profile,
                  data_seed: int = 0) -> ModelResults:
    """One model's section of notebooks 04-06, shown in this order and saved under the notebook's
    number (`ModelResults.file_prefix`): its trainable parameters against the paper profile's, its
    layers, the first seed's training curves, every seed's training summary (time, loss plateau),
    the accuracy per seed with their mean, spread and the paper's row (checked for plausibility),
    the confusion counts; and every seed's predictions. The runs are trained if missing."""
    from IPython.display import display
    from matplotlib import pyplot

    results = ModelResults.of(name, n_classes, index, profile, data_seed)
    model = architectures.build(name, n_classes, profile)
    reference = models.count_parameters(architectures.build(name, n_classes, get_profile("paper")))
    print(f"{models.count_parameters(model):,} trainable parameters in the {profile.name} profile; "
          f"{reference:,} in the paper profile (the reference's count)")
    display(models.layer_table(model, features.input_frames(profile)))
    for what, shown in (("training", results.curves()), ("training", results.training()),
                        ("accuracy", results.accuracy()), ("confusion", results.confusion())):
        if isinstance(shown, pd.DataFrame):
            result_files.save_table(shown, f"{results.file_prefix}_{what}", profile.name)
        else:
            result_files.save_figure(shown, f"{results.file_prefix}_{what}", profile.name)
            pyplot.close(shown)  # shown once, here, in order
        display(shown)
    results.save_predictions()
    return results


def within_seeds(systems: BySeed, make) -> BySeed:
    """`make(systems of one seed)` -> that seed's new systems, for every seed."""
    return {seed: make(tables) for seed, tables in systems.items()}


def with_ensemble(models: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The models and their ensemble (the mean of their probabilities), of one seed."""
    return {**models, "ensemble": fusion.ensemble(list(models.values()))}


def seed_rows(systems: BySeed, truth: pd.DataFrame) -> pd.DataFrame:
    """One row per (system, seed): accuracy (%) per device, group and overall, and the log loss."""
    rows = {(name, seed): fusion.evaluate(table, truth, decimals=None).iloc[0]
            for seed, tables in systems.items() for name, table in tables.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["system", "seed"])


def accuracy_rows(systems: BySeed, truth: pd.DataFrame) -> pd.DataFrame:
    """One row per system: the mean over seeds of its accuracy (%) per device, group and overall
    and of its log loss, with the seeds' standard deviation beside `overall` and `s7-s11`
    (`overall std`, `s7-s11 std`)."""
    per_seed = seed_rows(systems, truth)
    grouped = per_seed.groupby(level="system", sort=False)
    rows = grouped.mean()
    for column in SEED_SPREAD_OF:
        rows.insert(rows.columns.get_loc(column) + 1, f"{column} std", grouped[column].std(ddof=1))
    rows.insert(0, "seeds", grouped.size())
    decimals = {column: 1 for column in rows.columns}
    decimals.update({f"{column} std": 2 for column in SEED_SPREAD_OF})
    decimals["log loss"] = fusion.LOG_LOSS_DECIMALS
    rows.index.name = None
    return rows.round(decimals)


def gains(systems: BySeed, truth: pd.DataFrame, pairs: list[tuple[str, str]],
          n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Gain (percentage points) of system over baseline for each (system, baseline) of `pairs`,
    per device group and overall: the mean over seeds, with a 95 % interval over seeds and clips
    (`metrics.seeded_gain`); indexed by (system, compared with, group)."""
    blocks = {}
    for system, baseline in pairs:
        after = np.stack([fusion.correct(tables[system], truth).sort_index() for tables in systems.values()])
        before = np.stack([fusion.correct(tables[baseline], truth).sort_index() for tables in systems.values()])
        devices = truth["device"].sort_index()
        blocks[system, baseline] = metrics.seeded_gain(before, after, devices, n_resamples, seed)
    return pd.concat(blocks, names=["system", "compared with", "group"])


def with_gains(rows: pd.DataFrame, gain_table: pd.DataFrame) -> pd.DataFrame:
    """`rows` with, for each system compared in `gain_table` (its first comparison), the
    baseline, the overall gain and its 95 % interval as extra columns."""
    overall = gain_table.xs("overall", level="group").reset_index("compared with")
    overall = overall[~overall.index.duplicated()].rename(columns={"low": "gain low", "high": "gain high"})
    return rows.join(overall[list(GAIN_COLUMNS)].round({"gain": 1, "gain low": 1, "gain high": 1}))


def ensemble_table(models: BySeed, truth: pd.DataFrame, n_classes: int, n_resamples: int = 1000,
                   seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 (3 classes) or the one-stage rows of Table 2 (10 classes): the models and their
    ensemble (each seed's), the ensemble's gain over each member (stronger member first), and
    the paper's rows; returns (table, gains)."""
    systems = within_seeds(models, with_ensemble)
    rows = accuracy_rows(systems, truth)
    metrics.check_plausible(rows, n_classes)
    members = sorted(next(iter(models.values())), key=lambda name: -rows.loc[name, "overall"])
    gain_table = gains(systems, truth, [("ensemble", member) for member in members], n_resamples, seed)
    references = paper.reference_rows(rows.index, n_classes)
    return pd.concat([with_gains(rows, gain_table), *references]), gain_table


def two_stage_systems(models10: BySeed, models3: BySeed) -> tuple[BySeed, list[tuple[str, str]]]:
    """Table 2's systems of each seed: the 10-class models and their ensemble, each fused with the
    3-class ensemble (`2-stage <name>`), and each 10-class model fused with the 3-class model of
    its own architecture (`2-stage <name> (with <name> 3c)`); and the (two-stage, one-stage)
    pairs to compare."""
    def make(seed: int) -> dict[str, pd.DataFrame]:
        one_stage = with_ensemble(models10[seed])
        ensemble3 = fusion.ensemble(list(models3[seed].values()))
        fused = {f"2-stage {name}": fusion.two_stage(table, ensemble3) for name, table in one_stage.items()}
        same = {f"2-stage {name} (with {name} 3c)": fusion.two_stage(models10[seed][name], table)
                for name, table in models3[seed].items()}
        return {**one_stage, **fused, **same}

    systems = {seed: make(seed) for seed in models10}
    one_stage = list(with_ensemble(next(iter(models10.values()))))
    first3 = next(iter(models3.values()))
    pairs = [(f"2-stage {name}", name) for name in one_stage] + [
        (f"2-stage {name} (with {name} 3c)", name) for name in first3]
    return systems, pairs


def two_stage_table(models10: BySeed, models3: BySeed, truth10: pd.DataFrame, one_stage: pd.DataFrame,
                    n_resamples: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, BySeed, list[tuple[str, str]]]:
    """Table 2: the one-stage rows as notebook 07 made them (`one_stage`, its `ensemble_table` of
    10 classes: the ensemble's gain columns compare it with its strongest member), then the
    two-stage systems of `two_stage_systems` (mean over seeds) with each one's gain over its
    one-stage system, and the paper's rows; returns (table, gains, systems, pairs)."""
    systems, pairs = two_stage_systems(models10, models3)
    fused = list(dict.fromkeys(fused_name for fused_name, _ in pairs))  # in the order of `pairs`
    rows = accuracy_rows(within_seeds(systems, lambda by_name: {name: by_name[name] for name in fused}), truth10)
    metrics.check_plausible(rows, 10)
    gain_table = gains(systems, truth10, pairs, n_resamples, seed)
    ours = one_stage[[not str(name).startswith(paper.LABEL) for name in one_stage.index]]
    references = paper.reference_rows(paper.TABLE_2)
    return pd.concat([ours, with_gains(rows, gain_table), *references]), gain_table, systems, pairs


def paper_tables(index: pd.DataFrame, profile: Profile, data_seed: int = 0, n_resamples: int = 1000,
                 seed: int = 0) -> dict[str, pd.DataFrame]:
    """Tables 1, 2 and 3 and the one-stage rows of Table 2 (with the 10-class ensemble's gains over
    its members), as notebooks 07, 08 and 09 save them, computed from the runs (trained if
    missing): what tests/test_pins.py holds and benchmarks/cpu_agreement.py compares."""
    models3, truth3 = load_models(profile, index, 3, data_seed)
    models10, truth10 = load_models(profile, index, 10, data_seed)
    results, _ = ablation.run_all(index, profile)
    one_stage = ensemble_table(models10, truth10, 10, n_resamples, seed)[0]
    return {"07_table1": ensemble_table(models3, truth3, 3, n_resamples, seed)[0],
            "07_table2_one_stage": one_stage,
            "08_table2": two_stage_table(models10, models3, truth10, one_stage, n_resamples, seed)[0],
            "09_table3": ablation.table(results)}


def verdict(low: float, high: float) -> str:
    """"gain", "loss" or "not distinguishable": where a 95 % interval lies against zero."""
    return "gain" if low > 0 else "loss" if high < 0 else "not distinguishable"


def describe_gains(gain_table: pd.DataFrame) -> str:
    """One plain sentence per comparison: where the gain is distinguishable from zero (its 95 %
    interval over seeds and clips excludes zero) and where it is not."""
    sentences = []
    for (system, baseline), block in gain_table.groupby(level=["system", "compared with"], sort=False):
        block = block.droplevel(["system", "compared with"])
        clear = block[block["distinguishable"]]
        shown = ", ".join(f"{group} {row.gain:+.1f} points ({row.low:+.1f} to {row.high:+.1f})"
                          for group, row in clear.iterrows())
        unclear = ", ".join(block.index[~block["distinguishable"]])
        seeds = int(block["seeds"].iloc[0])
        basis = metrics.interval_basis(seeds)
        if not shown:
            sentences.append(f"{system} vs {baseline} ({basis}): no difference distinguishable from zero.")
        elif not unclear:
            sentences.append(f"{system} vs {baseline} ({basis}): distinguishable from zero everywhere: {shown}.")
        else:
            sentences.append(f"{system} vs {baseline} ({basis}): distinguishable from zero on {shown}; "
                             f"not on {unclear}.")
    return "\n".join(sentences)
