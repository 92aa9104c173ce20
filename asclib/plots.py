"""Figures the notebooks show: spectrograms, device responses, heatmaps.

Each function returns a matplotlib Figure, so a notebook can both display it and hand it to
`asclib.result_files.save_figure`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from asclib.config import Profile


def log_mels(panels: dict[str, np.ndarray], profile: Profile,
             events: dict[str, pd.DataFrame] | None = None, columns: int = 3) -> plt.Figure:
    """Scaled log-mel spectrograms side by side, one panel per entry; `events` (per panel: rows
    with onset, offset, event_label) are drawn as labelled bars over the spectrogram."""
    rows = int(np.ceil(len(panels) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.6 * rows), squeeze=False,
                                sharex=True, sharey=True)
    seconds_per_frame = profile.features.hop_length / profile.audio.sample_rate
    for axis, (title, matrix) in zip(axes.flat, panels.items()):
        extent = (0, matrix.shape[1] * seconds_per_frame, 0, matrix.shape[0])
        axis.imshow(matrix, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=0, vmax=1,
                    interpolation="nearest")  # crisp bins, and PNGs that compress
        axis.set_title(title, fontsize=10)
        panel_events = (events or {}).get(title)
        for level, event in enumerate([] if panel_events is None else panel_events.itertuples()):
            y = matrix.shape[0] * (0.92 - 0.09 * (level % 5))
            axis.plot([event.onset, event.offset], [y, y], color="cyan", lw=2.5)
            axis.text(event.onset, y + 0.01 * matrix.shape[0], event.event_label, color="cyan", fontsize=7)
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel("mel band")
    for axis in axes[-1, :]:
        axis.set_xlabel("time (s)")
    figure.tight_layout()
    return figure


def channels(inputs: np.ndarray, profile: Profile, title: str = "") -> plt.Figure:
    """The three input channels of one clip (static, delta, delta-delta), each on its own scale."""
    seconds_per_frame = profile.features.hop_length / profile.audio.sample_rate
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.2), sharey=True)
    names = ("log-mel (scaled to [0, 1])", "delta", "delta-delta")
    for axis, matrix, name in zip(axes, inputs, names):
        limit = np.abs(matrix).max() if name != names[0] else 1.0
        low = 0.0 if name == names[0] else -limit
        image = axis.imshow(matrix, origin="lower", aspect="auto", cmap="magma" if low == 0 else "coolwarm",
                            vmin=low, vmax=limit, extent=(0, matrix.shape[1] * seconds_per_frame, 0, matrix.shape[0]),
                            interpolation="nearest")
        axis.set(title=name, xlabel="time (s)")
        figure.colorbar(image, ax=axis, fraction=0.046)
    axes[0].set_ylabel("mel band")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def lines(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, xlabel: str, ylabel: str,
          logx: bool = False, ylim: tuple[float, float] | None = None,
          reference: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> plt.Figure:
    """Named (x, y) curves in one plot; optional dashed reference curves of the same names."""
    return line_panels({title: curves}, xlabel, ylabel, logx, ylim, reference)


def line_panels(panels: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], xlabel: str, ylabel: str,
                logx: bool = False, ylim: tuple[float, float] | None = None,
                reference: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, title: str = "") -> plt.Figure:
    """Side by side, one panel per title of `panels`, its named (x, y) curves; optional dashed
    reference curves of the same names, and an overall `title` (notebooks 01, 02, 12)."""
    figure, axes = plt.subplots(1, len(panels), figsize=(9 if len(panels) == 1 else 6 * len(panels), 4.2),
                                sharey=True, squeeze=False)
    colours = plt.cm.tab10(np.arange(10))
    for axis, (title, curves) in zip(axes[0], panels.items()):
        plot = axis.semilogx if logx else axis.plot
        for k, (name, (x, y)) in enumerate(curves.items()):
            keep = x > 30 if logx else slice(None)
            plot(x[keep], y[keep], color=colours[k % 10], label=name)
            if reference and name in reference:
                ref_x, ref_y = reference[name]
                keep = ref_x > 30 if logx else slice(None)
                plot(ref_x[keep], ref_y[keep], color=colours[k % 10], ls="--", lw=0.8)
        axis.set(xlabel=xlabel, title=title)
        if ylim:
            axis.set_ylim(*ylim)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(ncol=5, fontsize=8)
    axes[0, 0].set_ylabel(ylabel)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def by_device(table: pd.DataFrame, devices, title: str, marked=()) -> plt.Figure:
    """Accuracy (%) against device, one line per row of `table` (columns: the `devices`), with
    the `marked` devices shaded (notebook 12: the unseen s7-s11)."""
    figure, axis = plt.subplots(figsize=(10, 4))
    devices = list(devices)
    for name, row in table[devices].iterrows():
        axis.plot(range(len(devices)), row.to_numpy(float), "o-", ms=4, label=name)
    for device in marked:
        position = devices.index(device)
        axis.axvspan(position - 0.5, position + 0.5, color="tab:gray", alpha=0.12, lw=0)
    axis.set_xticks(range(len(devices)), devices)
    axis.set(title=title, xlabel="device" + (" (shaded: never heard in any form)" if marked else ""),
             ylabel="accuracy %")
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    return figure


def training_curves(history: pd.DataFrame, title: str) -> plt.Figure:
    """Training loss (per step and its per-epoch mean) and the learning rate, against epochs."""
    figure, (loss_axis, lr_axis) = plt.subplots(1, 2, figsize=(11, 3.2))
    steps_per_epoch = max(1, int((history["epoch"] == history["epoch"].iloc[0]).sum()))
    x = history["step"] / steps_per_epoch
    loss_axis.plot(x, history["loss"], color="tab:blue", alpha=0.3, lw=0.8, label="per step")
    per_epoch = history.groupby("epoch")["loss"].mean()
    loss_axis.plot(per_epoch.index + 0.5, per_epoch.values, color="tab:blue", marker="o", ms=3, label="epoch mean")
    # the last epoch of each cosine cycle (the learning rate restarts after it, or training ends)
    first_lr, last_lr = history.groupby("epoch")["lr"].first(), history.groupby("epoch")["lr"].last()
    ends = [e for e in per_epoch.index[:-1] if first_lr[e + 1] > last_lr[e]] + [per_epoch.index[-1]]
    loss_axis.plot(np.array(ends) + 0.5, per_epoch[ends], "D", color="tab:red", label="end of a cosine cycle")
    loss_axis.set(xlabel="epoch", ylabel="soft-target cross-entropy", title=f"{title}: training loss")
    loss_axis.legend()
    lr_axis.plot(x, history["lr"], color="tab:orange")
    lr_axis.set(xlabel="epoch", ylabel="learning rate", yscale="log", title="cosine schedule with warm restarts")
    for axis in (loss_axis, lr_axis):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def gains(gain_table: pd.DataFrame, title: str) -> plt.Figure:
    """Gains with their intervals (`tables.gains`): one marker and error bar per comparison and
    device group, a line at zero; an interval crossing the line is not distinguishable from it."""
    comparisons = list(dict.fromkeys(gain_table.index.droplevel("group")))
    blocks = {}
    for system, baseline in comparisons:
        rows = ((gain_table.index.get_level_values("system") == system)
                & (gain_table.index.get_level_values("compared with") == baseline))
        blocks[f"{system} vs {baseline}"] = gain_table[rows].droplevel(["system", "compared with"])
    return _intervals(blocks, "gain", 0.0, title, "accuracy gain (points), 95 % CI", columns=3)


def _intervals(blocks: dict[str, pd.DataFrame], value: str, reference: float, title: str, ylabel: str,
               columns: int) -> plt.Figure:
    """One marker with its error bar (`low`, `high`) per block and group (the blocks' index), side
    by side within each group, and a line at `reference`."""
    groups = list(dict.fromkeys(g for block in blocks.values() for g in block.index))
    figure, axis = plt.subplots(figsize=(max(6.0, 1.3 * len(groups) + 0.35 * len(blocks)), 3.6))
    width = 0.8 / len(blocks)
    for k, (label, block) in enumerate(blocks.items()):
        block = block.reindex(groups)
        x = np.arange(len(groups)) - 0.4 + width * (k + 0.5)
        axis.errorbar(x, block[value], yerr=[block[value] - block["low"], block["high"] - block[value]],
                      fmt="o", capsize=3, label=label)
    axis.axhline(reference, color="black", lw=0.8)
    axis.set_xticks(np.arange(len(groups)), groups)
    axis.set(title=title, ylabel=ylabel)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=7, ncol=min(columns, len(blocks)), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    figure.tight_layout()
    return figure


def ablation(results: pd.DataFrame, reference: pd.DataFrame, groups, title: str) -> plt.Figure:
    """One panel per device group: each seed's accuracy per ablation row (dots), their mean (line),
    and the paper's rows (`reference`, same order, dashed) on their own scale for the shape only."""
    rows = list(dict.fromkeys(results["row"]))
    figure, axes = plt.subplots(1, len(groups), figsize=(2.6 * len(groups), 3.6), sharey=False)
    for axis, group in zip(np.atleast_1d(axes), groups):
        x = np.array([rows.index(r) for r in results["row"]])
        axis.scatter(x, results[group], s=14, color="tab:blue", alpha=0.6, label="ours, one seed")
        axis.plot(range(len(rows)), results.groupby("row", sort=False)[group].mean().reindex(rows), "o-",
                  color="tab:blue", label="ours, mean")
        paper_axis = axis.twinx()
        if group in reference:  # the paper has no s7-s11
            paper_axis.plot(range(len(reference)), reference[group], "s--", color="tab:gray", label="paper (right axis)")
        paper_axis.tick_params(labelsize=7, colors="tab:gray")
        axis.set_xticks(range(len(rows)), rows, rotation=60, ha="right", fontsize=7)
        axis.set_title(group)
        axis.grid(axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("accuracy %")
    handles = [h for a in (np.atleast_1d(axes)[0], paper_axis) for h in a.get_legend_handles_labels()[0]]
    figure.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=3, fontsize=8)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return figure


def ratios(table: pd.DataFrame, title: str) -> plt.Figure:
    """Ratios with intervals (`cam.attention_ratio` indexed model, group): one marker and error
    bar per model and group, a line at one (no preference)."""
    models = list(dict.fromkeys(table.index.get_level_values(0)))
    return _intervals({model: table.loc[model] for model in models}, "ratio", 1.0, title, "ratio, 95 % CI", columns=5)


def histogram(values, title: str, xlabel: str, bins: int = 10) -> plt.Figure:
    """A histogram of `values`."""
    figure, axis = plt.subplots(figsize=(6, 3.2))
    axis.hist(values, bins=bins, color="tab:blue", edgecolor="white")
    axis.set(title=title, xlabel=xlabel, ylabel="count")
    figure.tight_layout()
    return figure


def heatmap(table: pd.DataFrame, title: str, fmt: str = ".1f", cmap: str = "viridis") -> plt.Figure:
    """A seaborn heatmap of a table, annotated with its values."""
    import seaborn as sns

    figure, axis = plt.subplots(figsize=(1.0 + 0.62 * table.shape[1], 0.9 + 0.42 * table.shape[0]))
    sns.heatmap(table, annot=True, fmt=fmt, cmap=cmap, cbar=False, ax=axis, annot_kws={"fontsize": 8})
    axis.set_title(title)
    figure.tight_layout()
    return figure


def cam_figure(log_mel: np.ndarray, panels: dict[str, np.ndarray], profile: Profile,
               events=None, title: str = "") -> plt.Figure:
    """A spectrogram (mel bands x frames) above one class activation map per entry of `panels`
    (`cam.maps`, same grid, values in [0, 1], drawn over a faint copy of the spectrogram), on one
    time axis in seconds, as in the paper's figures 2 and 3 (notebook 10, `predict --cam`).
    `events` (onset and offset in seconds, label) are shaded on every panel. The panels are on
    the network input's grid, whose frame t is the clip's log-mel frame t + 4 (the valid deltas
    drop 4 frames at each end), so each frame is drawn centred at its own time in the clip, where
    `cam.event_frames` places it too."""
    from asclib.features import EDGE_FRAMES

    seconds_per_frame = profile.features.hop_length / profile.audio.sample_rate
    start = (EDGE_FRAMES - 0.5) * seconds_per_frame
    extent = (start, start + log_mel.shape[1] * seconds_per_frame, 0, log_mel.shape[0])
    rows = 1 + len(panels)
    figure, axes = plt.subplots(rows, 1, figsize=(9, 1.7 * rows + 0.5), sharex=True, sharey=True, squeeze=False)
    axes = axes[:, 0]
    axes[0].imshow(log_mel, origin="lower", aspect="auto", extent=extent, cmap="magma", interpolation="nearest")
    axes[0].set_title("log-mel spectrogram", fontsize=10)
    for axis, (name, matrix) in zip(axes[1:], panels.items()):
        axis.imshow(log_mel, origin="lower", aspect="auto", extent=extent, cmap="gray", interpolation="nearest")
        axis.imshow(matrix, origin="lower", aspect="auto", extent=extent, cmap="jet", alpha=0.6, vmin=0, vmax=1,
                    interpolation="nearest")
        axis.set_title(name, fontsize=10)
    for onset, offset, label in events or []:
        for axis in axes:
            axis.axvspan(onset, offset, color="white", alpha=0.2, lw=0)
        axes[0].text(onset, 0.92 * log_mel.shape[0], label, color="cyan", fontsize=7)
    for axis in axes:
        axis.set_ylabel("mel band")
    axes[-1].set_xlabel("time (s)")
    figure.suptitle(title)
    figure.tight_layout()
    return figure
