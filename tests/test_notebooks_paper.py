"""The notebooks also describe the real data: run them with profile="paper" on the real clips."""

from __future__ import annotations

import json

import papermill

from asclib.report import NOTEBOOK_DIR


def test_data_notebook_describes_a_real_dataset(real_layout, tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_RESULTS_DIR", str(tmp_path / "results"))
    output = tmp_path / "01_data.ipynb"
    papermill.execute_notebook(str(NOTEBOOK_DIR / "01_data.ipynb"), str(output), kernel_name="python3",
                               parameters={"profile": "paper", "data_dir": str(real_layout)},
                               cwd=str(NOTEBOOK_DIR), progress_bar=False)
    text = json.dumps(json.load(output.open()))
    assert "13 clips, 13 locations in 9 cities" in text
    tables = tmp_path / "results" / "paper" / "tables"
    counts = (tables / "01_clips_by_device.csv").read_text()
    assert "s4,0,1,1" in counts.replace(".0", "")
