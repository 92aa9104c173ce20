"""The authors' released scores: the audit's numbers (shared folder), and the download path
(a local HTTP server; nothing is ever downloaded from the internet)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading

import pandas as pd
import pytest

from asclib import fusion, released
from asclib.data import COARSE_OF
from asclib.released import FILES, ReleasedFileError


@pytest.fixture(scope="module")
def audit(released_dir):
    data = released.load_released(released_dir)
    truth = data.truth()
    p10, p3 = data.p10(), data.p3()
    tables = {"10-class": p10, "row by row": released.row_by_row_two_stage(data),
              "joined": fusion.two_stage(p10, p3), "oracle": fusion.oracle(p10, truth["label"].map(COARSE_OF))}
    rows = pd.concat([fusion.evaluate(table, truth, name, decimals=None) for name, table in tables.items()])
    return data, rows


def test_released_files_shapes(audit):
    data, _ = audit
    assert data.scores10.shape == (2970, 10) and data.scores3.shape == (2970, 3)
    assert data.scores10.sum(axis=1) == pytest.approx(3, abs=1e-5)
    assert data.scores3.sum(axis=1) == pytest.approx(2, abs=1e-5)
    assert (data.evaluate10["filename"] != data.evaluate3["filename"]).mean() > 0.9  # other orders
    assert (data.evaluate10["scene"].map(COARSE_OF) == data.evaluate3["coarse"]).all()  # same coarse per row


def test_ensembles_as_released(audit):
    data, rows = audit
    truth = data.truth()
    assert round(rows.loc["10-class", "overall"], 2) == 79.39
    assert round(rows.loc["10-class", "log loss"], 3) == 1.115
    three = fusion.evaluate(data.p3(), truth.assign(label=truth["label"].map(COARSE_OF)), decimals=None)
    assert round(three.iloc[0]["overall"], 2) == 93.23


def test_row_by_row_product_gives_the_published_number(audit):
    _, rows = audit
    shipped = rows.loc["row by row"]
    assert round(shipped["overall"], 2) == 81.89
    assert round(shipped["log loss"], 3) == 0.789
    per_device = {"a": 87.9, "b": 80.9, "c": 87.3, "s1": 81.8, "s2": 77.0, "s3": 82.4,
                  "s4": 83.0, "s5": 79.1, "s6": 77.6}  # docs/spec.md section 8.4, as their README lists
    assert {d: round(shipped[d], 1) for d in per_device} == per_device


def test_joined_by_filename_and_oracle(audit):
    _, rows = audit
    assert round(rows.loc["joined", "overall"], 2) == 79.36
    assert round(rows.loc["joined", "log loss"], 3) == 0.829
    assert round(rows.loc["oracle", "overall"], 2) == 84.41


def test_rows_of_the_two_files_are_different_clips(audit):
    data, _ = audit
    p10, p3 = data.p10(), data.p3()
    true_coarse = data.truth()["label"].map(COARSE_OF)
    joined = fusion.consistency(p10, p3, true_coarse, "joined").iloc[0]
    shipped = fusion.consistency(p10, data.p3_by_row(), true_coarse, "row by row").iloc[0]
    assert (round(joined["argmax agreement %"], 1), round(shipped["argmax agreement %"], 1)) == (94.6, 88.1)
    assert (joined["wrong in both"], shipped["wrong in both"]) == (126, 27)
    assert (round(joined["correlation of true-class scores"], 2),
            round(shipped["correlation of true-class scores"], 2)) == (0.78, 0.22)


# --- finding, downloading and checking the files ------------------------------------------------

@pytest.fixture
def upstream(tmp_path, released_dir):
    """A copy of the released files in the upstream repository's layout, under the commit."""
    root = tmp_path / "upstream"
    for name, (path, _) in FILES.items():
        target = root / released.COMMIT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(released_dir / name, target)
    return root


@pytest.fixture
def server(upstream):
    """The base URL of a local HTTP server over `upstream` (127.0.0.1, a free port)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=upstream))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/{released.COMMIT}"
    httpd.shutdown()
    httpd.server_close()


def _corrupt(path) -> None:
    content = bytearray(path.read_bytes())
    content[100] ^= 1
    path.write_bytes(bytes(content))


def test_fetch_downloads_and_verifies(server, tmp_path, released_dir):
    folder = released.fetch(tmp_path / "got", base_url=server)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (folder / name).read_bytes() == (released_dir / name).read_bytes()
    assert released.verify(folder) == folder


def test_fetch_refuses_a_corrupt_file_and_writes_nothing(server, upstream, tmp_path):
    name = "fold1_evaluate_3class.csv"
    _corrupt(upstream / released.COMMIT / FILES[name][0])
    destination = tmp_path / "got"
    with pytest.raises(ReleasedFileError, match=f"{name}.*expected {FILES[name][1]}") as error:
        released.fetch(destination, base_url=server)
    assert "SHA-256 starts with" in str(error.value)
    assert not destination.exists() or not any(destination.iterdir())


def test_a_wrong_file_in_a_given_folder_is_refused(released_dir, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(released_dir, folder)
    _corrupt(folder / "class10_results_acc0.794.txt")
    with pytest.raises(ReleasedFileError, match="class10_results_acc0.794.txt: SHA-256 starts with "
                                                "[0-9a-f]{16}, expected e8dd1a54c9908edb"):
        released.released_folder(folder)
    (folder / "class10_results_acc0.794.txt").unlink()
    with pytest.raises(ReleasedFileError, match="class10_results_acc0.794.txt not found in"):
        released.released_folder(folder)


def test_folder_from_the_environment(released_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(released.ENV_VARIABLE, str(released_dir))
    assert released.released_folder() == released_dir
    monkeypatch.setenv(released.ENV_VARIABLE, str(tmp_path))  # an argument wins over the variable
    assert released.released_folder(released_dir) == released_dir
    with pytest.raises(ReleasedFileError, match="not found in"):
        released.released_folder()


def test_download_into_the_cache_once(server, tmp_path, monkeypatch):
    monkeypatch.delenv(released.ENV_VARIABLE, raising=False)
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    fetched = []
    real_fetch = released.fetch
    monkeypatch.setattr(released, "fetch", lambda destination: fetched.append(real_fetch(destination, server)))
    folder = released.released_folder()
    assert folder == tmp_path / "cache" / "released" / released.COMMIT
    assert released.released_folder() == folder and len(fetched) == 1  # the second call uses the cache


def test_fetch_without_a_server_names_the_url_and_the_variable(tmp_path):
    with pytest.raises(OSError, match=r"cannot download http://127\.0\.0\.1:9/task1a/10class/.*ASC_RELEASED_DIR"):
        released.fetch(tmp_path / "got", base_url="http://127.0.0.1:9")
    assert not (tmp_path / "got").exists()
