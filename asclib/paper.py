"""The paper's reported numbers (Hu et al., ICASSP 2021), for reference columns only.

They were measured on the real development set and, for single models, with the best epoch
chosen on the evaluation split itself (docs/spec.md section 12.1 item 6); the 81.9 % two-stage ensemble comes
from a row-order mix-up (docs/spec.md section 8.4; joined by filename the released scores give 79.4 %).
Notebooks show them only in rows or columns labelled as the paper's.
"""

from __future__ import annotations

import pandas as pd

GROUPS = ("A", "B&C", "s1-s3", "s4-s6", "overall")

LABEL = "paper, real data"  # how a row or column of the paper's numbers is labelled
# Table 2: 10-class accuracy (%) by device group
TABLE_2 = {
    "resnet": (83.0, 76.1, 73.6, 71.0, 74.6),
    "fcnn": (87.3, 79.5, 75.7, 73.0, 76.9),
    "fsfcnn": (83.9, 78.6, 75.4, 72.8, 76.2),
    "ensemble": (87.0, 81.5, 78.0, 76.9, 79.4),
    "2-stage resnet": (84.5, 78.6, 76.2, 76.4, 77.7),
    "2-stage fcnn": (89.1, 82.9, 78.5, 76.9, 80.1),
    "2-stage fsfcnn": (83.9, 81.2, 78.6, 76.4, 79.0),
    "2-stage ensemble": (87.9, 84.1, 80.4, 79.9, 81.9),
}
# Table 3: the 10-class ResNet's accuracy (%) by device group as augmentations are added
# (mixup and random crop always on). The last row also had more channels (the paper's footnote 2).
TABLE_3 = {
    "ResNet (mixup, crop)": (78.8, 72.1, 69.3, 69.5, 71.0),
    "+sa": (80.3, 73.5, 71.4, 67.7, 71.6),
    "+sa+sc": (79.1, 75.0, 70.7, 68.9, 72.0),
    "+sa+sc+r": (80.3, 74.7, 71.4, 70.3, 72.8),
    "+sa+sc+r+aug": (83.0, 76.1, 73.6, 71.0, 74.6),
}
# Table 1: 3-class accuracy (%), overall only
TABLE_1 = {"resnet": 91.4, "fcnn": 92.9, "ensemble": 93.2}
# The paper states no model sizes; its authors' Keras code gives these trainable parameter counts
# (docs/spec.md section 4), which the paper profile's networks equal (tests/test_models.py)
CODE_LABEL = "authors' Keras code"
CODE_PARAMETERS = {("resnet", 10): 12_966_444, ("resnet", 3): 3_240_732, ("fcnn", 10): 11_780_329,
                   ("fcnn", 3): 11_776_192, ("fsfcnn", 10): 16_531_913}


def table_3() -> pd.DataFrame:
    """The paper's Table 3 as labelled rows (notebook 09)."""
    return pd.DataFrame([dict(zip(GROUPS, values)) for values in TABLE_3.values()],
                        index=[f"{LABEL} ({row})" for row in TABLE_3])


def reference_rows(systems, n_classes: int = 10) -> list[pd.DataFrame]:
    """The paper's accuracy for each of `systems` that it reports, one labelled row each (groups
    it did not report: NaN); a system it does not have (an architecture added here) gets none."""
    reported = TABLE_2 if n_classes == 10 else TABLE_1
    return [pd.DataFrame([dict(zip(GROUPS, reported[system])) if n_classes == 10 else {"overall": reported[system]}],
                         index=[f"{LABEL} ({system})"]) for system in systems if system in reported]
