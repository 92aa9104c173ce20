"""No result figure, ranking or comparison is typed by hand into a notebook's markdown, or into
the README and docs/ outside their generated blocks: a result is written by code from the
committed tables (a notebook's output, a `<!-- results: ... -->` block), so it changes when
the numbers change. Background that is not a result stays prose.

The rule, applied sentence by sentence to the text without its code (``` blocks, `inline
code`, $math$) and without the sentences the allowlist below explains:

- a **result figure** is a number with `%` (or "percent"), a quantity of points ("2.5
  points", "+-1.5 pp", "a few points", "a point or two"), a signed number ("+2.6", "-0.19",
  "±3"), a decimal of 1 or more ("79.36"), "N times as many", or a count of verdicts, runs or
  gains ("2 of 9 verdicts"). Accuracies and gains here are in % and points, so an unsigned
  decimal below 1 (a probability, a momentum, Beta(0.4, 0.4)) is not taken for one;
- a **ranking or comparison** is "beats", "outperforms", "does not beat", "is the best /
  worst / highest / lowest", "higher / lower / more accurate / less accurate than", "sits (well)
  near / below / above";
- each is background, not a result, when it is
  - a number with a unit of measure that no result here is counted in (Hz, s, frames,
    channels, parameters...: `UNITS`), a section number ("section 8.3"), a version or a value
    in scientific notation (1e-5);
  - the paper's own number in a sentence that names the paper: a value of `asclib.paper`'s
    tables or one of their overall differences (the two-stage gains, the ensembles' gains,
    Table 3's steps), read from `asclib.paper`, never typed here; and a ranking in a sentence
    that names the paper (what the paper reports);
  - one of the `BACKGROUND` entries below, each with its reason (configuration values are
    read from `asclib.config` and the library's constants where they live).

Not caught: counts without a unit ("126 mistakes"), log losses and correlations (decimals
below 1), and comparisons in other words ("costs accuracy beyond s4-s6's", "near the
baseline" without a verb of position). The test is a tripwire for the common case, not a
proof; every allowlist entry must still be needed by some sentence.

README.md and docs/*.md (but docs/spec.md, the recipe, which is background by nature) are
checked the same way outside their generated blocks, with one more exemption: a paragraph (with
the tables and lists that follow it) that cites a benchmark (a `benchmarks/` path or a file of
`benchmarks/results/`) reports that benchmark's output, which is committed there.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from statistics import NormalDist

import pytest

from asclib import config, metrics, paper, train
from asclib.ablation import HALF_WIDTH_GOAL
from asclib.config import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DOCUMENTS = [PROJECT_ROOT / "README.md",
             *sorted(path for path in (PROJECT_ROOT / "docs").glob("*.md") if path.name != "spec.md")]

NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
SIGN = r"(?:\+-|\+/-|[+±−-])"
RANGE = rf"{SIGN}?{NUMBER}(?:\s*(?:-|–|to|\.\.)\s*{SIGN}?{NUMBER})?"
COUNT_WORDS = r"one|two|three|four|five|six|seven|eight|nine|ten|a few|several|many"
UNITS = (r"k?Hz|m?s|min|h|(?:CPU-|GPU-)?(?:seconds|minutes|hours)|dB|GB|MB|bits?|semitones|frames|bins|bands|"
         r"mels|channels|filters|samples|parameters|epochs|steps|layers|x\b|times\b|kernels?|taps|cores|"
         r"microphones|responses|years?")

FIGURES = {
    "percentage": rf"{RANGE}\s*(?:%|percent\b)",
    "points": rf"(?:{RANGE}|\b(?:{COUNT_WORDS}))\s*(?:percentage\s+)?(?:points?|pp)\b|\ba point or two\b",
    "signed number": rf"(?:(?<=[\s(\[,;:])|^)(?:\+-|±|[+−-])\d",
    "decimal": rf"(?<![\w.]){NUMBER}(?![\w.]?\d)",  # kept only when it has decimals and is 1 or more
    "ratio": r"\btimes as (?:many|much|often)\b",
    "count of results": r"\b\d+ of (?:the )?\d+ (?:verdicts|runs|gains|steps|cells)\b",
    "ranking": (r"\b(?:beats|outperform(?:s|ed)?|(?:does|do|did) not beat)\b"
                r"|\b(?:is|are|was|were|comes? out|came out)\s+(?:the\s+)?(?:best|worst|highest|lowest)\b"
                r"|\b(?:higher|lower|more accurate|less accurate)\s+than\b"
                r"|\b(?:sits?|sat|lies?)\s+(?:\w+\s+)?(?:near|below|above)\b"),
}
NAMES_THE_PAPER = re.compile(r"\bpaper\b|\bHu et al\b", re.I)
NOT_A_RESULT = [  # spans removed before the figures are looked for
    rf"{RANGE}\s*(?:{UNITS})\b",
    r"\b[Ss]ections?\s+\d+(?:\.\d+)*(?:(?:,\s*|\s+and\s+|-)\d+(?:\.\d+)*)*",
    r"\b\d+(?:\.\d+)?e[+-]?\d+\b",  # scientific notation: tolerances, learning rates
    r"\b\d+\.\d+\.\d+\b|\b\d+\.\d+\+",  # versions
]


def _percent(value: float) -> str:
    return f"{value * 100:g} %"


_augment = {field.name: field.default for field in fields(config.AugmentConfig)}
_corpus = config.CorpusConfig()
_training = _corpus.train_segments + 5 * _corpus.minor_segments  # device A and the five other training devices
_per_device = _corpus.evaluate_segments * 10  # evaluation clips of one device: segments per scene x ten scenes
_ASSUMED = 0.75  # the accuracy at which docs/library.md works out the sampling noise


def _noise(clips: int) -> int:
    """The binomial half width (points) of an accuracy of _ASSUMED measured on `clips` clips."""
    z = NormalDist().inv_cdf(0.5 + metrics.CONFIDENCE / 2)
    return round(100 * z * (_ASSUMED * (1 - _ASSUMED) / clips) ** 0.5)


# (regex, why it is background), removed in this order; configuration values are read from where they are set
BACKGROUND = [
    (rf"(?:\+-|±){HALF_WIDTH_GOAL:g}(?:-point)? (?:points?|interval)",
     "the half width a step's interval should reach (ablation.HALF_WIDTH_GOAL), a goal, not a result"),
    (rf"{_percent(_corpus.train_segments / _training)} (?:device )?A, (?:about )?"
     rf"{_percent(_corpus.minor_segments / _training)} each",
     "the training split's shares of devices (config.CorpusConfig, as in the real data)"),
    (rf"about ±{_noise(_per_device)} points of sampling noise \({_percent(metrics.CONFIDENCE)}\) and a device "
     rf"group's about ±{_noise(3 * _per_device)}, instead of ±{_noise(90)} with the first version's 90 clips "
     rf"\(binomial, at {_percent(_ASSUMED)} accuracy\)",
     "design arithmetic: the binomial half width of an accuracy over the evaluation clips of a device, a group"),
    (rf"chance \({_percent(1 / 10)} for ten classes, about {100 / 3:.0f} % for three\)",
     "chance level: one over the number of classes"),
    (r"below 100 %", "the ceiling of an accuracy"),
    (r"Task 1a baseline .{0,80}? reached 51\.4 % on the real development set",
     "the official DCASE 2020 Task 1a baseline's published accuracy: background, not measured here"),
    (r"from 70\.7 % to 85\.0 %",
     "the paper's text (section 3.4, its Figure 2 clip), which asclib.paper's tables do not hold"),
    (rf"under {train.PLATEAU_CHANGE:g} %", "the plateau threshold (train.PLATEAU_CHANGE), a setting"),
    (rf"on {_percent(_augment['mixstyle_probability'])} of the batches",
     "a setting, config.AugmentConfig.mixstyle_probability"),
    (rf"{_percent(metrics.CONFIDENCE)}(?: \w+)? intervals?|\({_percent(metrics.CONFIDENCE)}\)",
     "the confidence level of every interval (metrics.CONFIDENCE)"),
    (r"Python \d+\.\d+", "a version"),
]


def _paper_values() -> set[str]:
    """The paper's numbers (asclib.paper), to one decimal: its accuracies, and the overall
    differences it reports or implies (each two-stage system over its one-stage system, each
    ensemble over its members, each Table 3 step)."""
    values = {f"{value:.1f}" for table in (paper.TABLE_2, paper.TABLE_3) for row in table.values() for value in row}
    values |= {f"{value:.1f}" for value in paper.TABLE_1.values()}
    overall = {name: row[-1] for name, row in paper.TABLE_2.items()}
    gains = [overall[f"2-stage {name}"] - overall[name] for name in ("resnet", "fcnn", "fsfcnn", "ensemble")]
    gains += [overall["ensemble"] - overall[name] for name in ("resnet", "fcnn", "fsfcnn")]
    gains += [paper.TABLE_1["ensemble"] - paper.TABLE_1[name] for name in ("resnet", "fcnn")]
    steps = [row[-1] for row in paper.TABLE_3.values()]
    gains += [after - before for before, after in zip(steps, steps[1:])]
    return values | {f"{abs(gain):.1f}" for gain in gains}


PAPER_VALUES = _paper_values()


def _plain(text: str) -> str:
    """Markdown without code, math, HTML comments and emphasis."""
    text = re.sub(r"```.*?```|<!--.*?-->|\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`|\$[^$\n]+\$", " ", text)
    return text.replace("**", "").replace("*", "")


def sentences(text: str) -> list[str]:
    """The sentences of a markdown text, each on one line (list items and table rows apart)."""
    found = []
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[-*] |\d+\. |\||#))", _plain(text)):
        block = " ".join(block.split())
        found += [sentence for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z(\"'])", block) if sentence]
    return found


def _is_paper_figure(figure: str, sentence: str) -> bool:
    numbers = re.findall(r"\d+(?:\.\d+)?", figure.replace(",", ""))
    return bool(NAMES_THE_PAPER.search(sentence)) and bool(numbers) and \
        all(f"{float(number):.1f}" in PAPER_VALUES for number in numbers)


def result_figures(text: str) -> list[tuple[str, str]]:
    """(sentence, what it states) for every result figure, ranking or comparison that `text`
    (markdown) states by hand, under the rule of the module's docstring."""
    flagged = []
    for sentence in sentences(text):
        rest = sentence
        for pattern, _ in BACKGROUND:
            rest = re.sub(pattern, " ", rest)
        for pattern in NOT_A_RESULT:
            rest = re.sub(pattern, " ", rest)
        for kind, pattern in FIGURES.items():
            for match in re.finditer(pattern, rest):
                figure = match.group()
                if kind == "decimal" and ("." not in figure or float(figure.replace(",", "")) < 1):
                    continue
                if kind == "ranking" and NAMES_THE_PAPER.search(sentence):
                    continue
                if kind != "ranking" and _is_paper_figure(figure, sentence):
                    continue
                flagged.append((sentence, f"{kind}: {figure.strip()}"))
    return flagged


def _markdown_cells(notebook: Path) -> list[tuple[int, str]]:
    cells = json.loads(notebook.read_text())["cells"]
    return [(index, "".join(cell["source"])) for index, cell in enumerate(cells) if cell["cell_type"] == "markdown"]


def _outside_generated_blocks(text: str) -> str:
    """`text` without its `<!-- results: ... -->` and `<!-- registry: ... -->` blocks (asclib.report)."""
    return re.sub(r"<!-- (results|registry): [^ ]+ -->\n.*?<!-- /\1 -->", " ", text, flags=re.S)


BENCHMARK_OUTPUTS = {path.name for path in (PROJECT_ROOT / "benchmarks" / "results").iterdir()}


def _cites_a_benchmark(paragraph: str) -> bool:
    return "benchmarks/" in paragraph or any(name in BENCHMARK_OUTPUTS for name in re.findall(r"[\w.-]+", paragraph))


def test_the_checker_catches_a_made_up_result_figure():
    made_up = ("## What this shows\n\nThe two-stage FCNN gains 2.4 points on s4-s6 (+0.6 to +4.1), "
               "reaching 67.3 on the unseen devices.\n\n- The ensemble beats every single model.\n"
               "- Seeds differ by a point or two, about 12 % of the clips.\n")
    kinds = {what.split(":")[0] for _, what in result_figures(made_up)}
    assert kinds == {"points", "signed number", "decimal", "ranking", "percentage"}
    assert result_figures("Three seeds of a short run cannot resolve a few points.")
    assert result_figures("Row by row, the fusion turns three times as many decisions right as wrong.")
    assert result_figures("The one-ulp replicate changed 2 of 9 verdicts.")
    assert result_figures("Our ensemble reaches 79.4 %.")  # a paper value, but not said of the paper
    assert [what for _, what in result_figures("The paper's ensemble reaches 79.4 %, ours 64.7 %.")] == \
        ["percentage: 64.7 %", "decimal: 64.7"]


def test_the_checker_passes_background():
    background = (
        "The paper (section 3.1) feeds its CNNs 10 s clips at 44.1 kHz, 128 mel bands from 0 to 22,050 Hz,\n"
        "and reports gains of 2.5 to 3.2 points overall; its 10-class ensemble (79.4 %) beats every single model.\n\n"
        "Each gain comes with a 95 % interval over seeds and clips, and the cost table gives the seeds for +-1.5 points.\n"
        "The fold-1 split trains on about 14 k clips (75 % device A, about 5 % each of B, C, s1, s2, s3).\n"
        "A device-A clip is read, with probability 0.4, through one of 56 microphones; mixup draws Beta(0.4, 0.4).\n"
        "SGD with momentum 0.9 from 0.1 to 1e-5 (docs/spec.md sections 8.3, 8.4; librosa 0.6.3), pitch in -4..+4 "
        "semitones, `sox compand 0.2,0.3 6:-70,-60`.\n")
    assert result_figures(background) == []


def test_every_background_entry_is_still_needed():
    """An entry that no sentence needs any more goes: the allowlist stays as short as the prose."""
    texts = [text for notebook in NOTEBOOKS for _, text in _markdown_cells(notebook)]
    texts += [_outside_generated_blocks(document.read_text()) for document in DOCUMENTS]
    unused = [why for pattern, why in BACKGROUND
              if not any(re.search(pattern, sentence) for text in texts for sentence in sentences(text))]
    assert unused == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_no_notebook_markdown_states_a_result_figure(notebook):
    flagged = [f"{notebook.name} cell {index}: {what} in {sentence!r}"
               for index, text in _markdown_cells(notebook) for sentence, what in result_figures(text)]
    assert flagged == [], "results typed by hand (compute them, or point at the output below):\n" + "\n".join(flagged)


@pytest.mark.parametrize("document", DOCUMENTS, ids=[path.name for path in DOCUMENTS])
def test_no_document_states_a_result_figure_outside_its_generated_blocks(document):
    paragraphs = re.split(r"\n\s*\n(?!\s*(?:\||[-*] ))", _outside_generated_blocks(document.read_text()))
    flagged = [f"{document.name}: {what} in {sentence!r}" for paragraph in paragraphs
               if not _cites_a_benchmark(paragraph) for sentence, what in result_figures(paragraph)]
    assert flagged == [], "results typed by hand (use a <!-- results: ... --> block):\n" + "\n".join(flagged)
