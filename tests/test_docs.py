"""The documentation holds together: a short README, citations of docs/spec.md that exist, and
no reference to a file outside the repository (issue 19, item 4)."""

from __future__ import annotations

import json
import re

import pytest

from asclib.config import PROJECT_ROOT

DOCS = sorted((PROJECT_ROOT / "docs").glob("*.md"))
README = PROJECT_ROOT / "README.md"


def _texts() -> dict[str, str]:
    """README, docs, the library's modules and the notebooks' cells (sources only, no outputs)."""
    texts = {str(path.relative_to(PROJECT_ROOT)): path.read_text() for path in [README, *DOCS]}
    texts.update({str(path.relative_to(PROJECT_ROOT)): path.read_text()
                  for path in sorted((PROJECT_ROOT / "asclib").glob("*.py"))})
    for path in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        texts[str(path.relative_to(PROJECT_ROOT))] = "\n".join("".join(cell["source"]) for cell in cells)
    return texts


def test_the_readme_is_a_front_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    assert "make reproduce" in text and "make test" in text
    assert text.index("row-order mix-up") < 1500  # the headline finding on the first screen
    assert "<!-- results: tables/08_table2.csv -->" in text and "<!-- results: tables/11_released_audit.csv -->" in text
    for name in ("running", "library", "results", "performance", "spec"):
        assert f"docs/{name}.md" in text and (PROJECT_ROOT / "docs" / f"{name}.md").is_file()


def test_every_spec_citation_names_a_section_of_docs_spec():
    numbers = set(re.findall(r"^#+ (\d+(?:\.\d+)?)\.? ", (PROJECT_ROOT / "docs" / "spec.md").read_text(), re.M))
    cited = 0
    for name, text in _texts().items():
        assert not re.search(r"\bspec (section|sections|appendix|\d)", text), f"{name}: a spec citation outside docs/spec.md"
        for match in re.finditer(r"docs/spec\.md sections? ([\d.]+)(?:(?:, | and |-)([\d.]+))?", text):
            for number in filter(None, match.groups()):
                assert number.rstrip(".") in numbers, f"{name}: docs/spec.md has no section {number}"
                cited += 1
    assert cited >= 20


@pytest.mark.parametrize("name", sorted(_texts()))
def test_nothing_refers_to_a_file_outside_the_repository(name):
    assert not re.search(r"\.\./\w|shared/reference|shared/real-clips", _texts()[name])


def _sections(path) -> set[str]:
    """The headings of a markdown file, and the bold words that open a paragraph (the README's)."""
    text = path.read_text()
    found = re.findall(r"^#+ (.+)$", text, re.M) + re.findall(r"^\*\*([^*]+)\*\*", text, re.M)
    titles = {" ".join(title.split()).rstrip(".:,") for title in found}
    # "Title (qualifier)" and "Title: subtitle" are cited as "Title"
    return titles | {re.split(r" \(|: ", title)[0] for title in titles}


def test_every_cited_section_exists():
    """A citation such as (docs/performance.md, "Time and seeds") names a heading of that file:
    a section renamed or moved to another file leaves no reader looking for it."""
    sections = {"README": _sections(README), **{f"docs/{path.name}": _sections(path) for path in DOCS}}
    cited = 0
    for name, text in _texts().items():
        for file, title in re.findall(r'(README|docs/\w+\.md)`?(?:,|\'s)?\s+"([^"]+)"', text):
            title = " ".join(title.split())
            assert title in sections[file.removesuffix(".md") if file.startswith("README") else file], \
                f'{name} cites "{title}" in {file}, which has no such section'
            cited += 1
    assert cited >= 10


def test_every_cited_file_exists():
    """A path in the prose (`benchmarks/results/x.txt`, `tests/test_y.py`) is there to be opened."""
    pattern = r"\b((?:asclib|benchmarks|docs|notebooks|results|tests)/[\w./-]+\.(?:csv|ipynb|json|md|py|sh|txt))\b"
    cited = [(name, path) for name, text in _texts().items() for path in re.findall(pattern, text)]
    assert len(cited) >= 100
    assert [(name, path) for name, path in cited if not (PROJECT_ROOT / path).exists()] == []


def test_every_cited_function_exists():
    """A name such as `train.fit_many` or `asclib.fusion.oracle` in the prose is still in the library
    (a function folded away, `train.train_all` for one, must not live on in the docs)."""
    import importlib
    import pkgutil

    import asclib

    modules = {module.name for module in pkgutil.iter_modules(asclib.__path__)}
    cited = [(name, module, attribute) for name, text in _texts().items()
             for module, attribute in re.findall(r"`(?:asclib\.)?([a-z_]+)\.([A-Za-z_]\w*)(?:\([^`]*\))?`", text)
             if module in modules and attribute not in ("py", "csv", "md", "json", "txt")]
    assert len(cited) >= 100
    missing = [(name, f"{module}.{attribute}") for name, module, attribute in cited
               if not hasattr(importlib.import_module(f"asclib.{module}"), attribute)]
    assert missing == []
