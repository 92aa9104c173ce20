"""Training curves for TensorBoard, written while a run trains (`train.fit`,
`evaluation.run_predictions`; docs/running.md).

Each run writes to `<run folder>/tensorboard/`: the training loss and the learning rate of every
step, flushed at the end of each epoch, so `tensorboard --logdir runs/` follows a long run live;
and, once its evaluation predictions are made, its accuracy on every device, device group and
overall. A resumed run drops what it had logged past its last checkpoint (`purge_step`), so its
curves never hold two values for one step. Every profile writes them: in the quick profile the
cost is a few milliseconds per run (docs/performance.md).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FOLDER = "tensorboard"  # inside a run folder


def _writer(run_folder: str | Path, purge_step: int | None = None):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(Path(run_folder) / FOLDER), purge_step=purge_step)


class TrainingCurves:
    """The curves of one `train.fit` call: open from its first step (`first_step`, past a
    checkpoint when resuming), one `epoch` call per finished epoch, then `close`."""

    def __init__(self, run_folder: str | Path, first_step: int = 0):
        self.writer = _writer(run_folder, first_step or None)

    def epoch(self, rows) -> None:
        """Log one epoch's rows of the training history, (step, epoch, lr, loss) each, and flush."""
        for step, _, lr, loss in rows:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/learning_rate", lr, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def log_accuracy(run_folder: str | Path, accuracy: pd.DataFrame, step: int) -> None:
    """Log a run's accuracy by device and group (one row of `evaluation.accuracy`) at `step`,
    the run's last training step."""
    with _writer(run_folder) as writer:
        for column, value in accuracy.iloc[0].items():
            writer.add_scalar(f"evaluation/{column}", float(value), step)
