"""The repository documents itself: no file points outside it, and what the docs cite exists.

A user gets only the repository, so no README, docs page, docstring, notebook, test or
build file may refer to a path outside it (a sibling ``shared`` folder, an absolute path of
the machine it was written on).  Every page of docs/ and every section they cite must exist,
and the docs pages must name real functions, tests and measures.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# The text files a user reads or runs: (folder or file, searched recursively when a folder).
SCOPE = (
    "README.md",
    "Makefile",
    "pyproject.toml",
    "checkpoints/README.md",
    ".ci",
    "docs",
    "grokinterp",
    "notebooks",
    "tests",
)
TEXT_SUFFIXES = {"", ".md", ".py", ".ipynb", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml"}
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".ruff_cache"}

# Built from pieces so that this file does not match its own patterns.
_SHARED = "shared"
OUTSIDE = {
    "a sibling shared folder": re.compile(re.escape("../" + _SHARED)),
    "the shared spec": re.compile(re.escape(_SHARED + "/" + "SPEC")),
    "an absolute machine path": re.compile(r"(?<![\w./~-])" + re.escape("/" + "work" + "/")),
}


def _files() -> list[Path]:
    out = []
    for entry in SCOPE:
        path = ROOT / entry
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out += [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and p.suffix in TEXT_SUFFIXES
                and not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)
            ]
    return out


def _text(path: Path) -> str:
    """The file's text; a notebook's cell sources and outputs as plain text (no JSON escapes)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return text
    parts = []
    for cell in json.loads(text)["cells"]:
        parts.append("".join(cell.get("source", "")))
        for output in cell.get("outputs", []):
            parts.append(json.dumps(output, ensure_ascii=False))
    return "\n".join(parts)


FILES = _files()
TEXTS = {path.relative_to(ROOT).as_posix(): _text(path) for path in FILES}


def test_the_scan_sees_the_files_it_guards():
    for name in ("README.md", "docs/measures.md", "grokinterp/fourier.py", "Makefile"):
        assert name in TEXTS, name
    assert any(name.endswith(".ipynb") for name in TEXTS)
    assert "tests/test_docs.py" in TEXTS


def test_no_file_refers_to_a_path_outside_the_repository():
    hits = []
    for name, text in TEXTS.items():
        for what, pattern in OUTSIDE.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                hits.append(f"{name}:{line}: {what} ({match.group(0)!r})")
    assert not hits, "cite a docs/ page of this repository instead:\n" + "\n".join(hits)


def test_the_outside_patterns_catch_what_they_should():
    bad = [
        "see " + "../" + _SHARED + "/SPEC.md",
        "(" + _SHARED + "/" + "SPEC.md, measure 4)",
        "open /" + "work/main/checkpoints",
        "`/" + "work/` folder",
    ]
    good = ["docs/measures.md", "https://example.org/work/x", "a/work/b", "homework/"]
    for text in bad:
        assert any(p.search(text) for p in OUTSIDE.values()), text
    for text in good:
        assert not any(p.search(text) for p in OUTSIDE.values()), text


# ------------------------------------------------------------------ citations of docs pages

_DOC_REF = re.compile(r"(?<![\w/.-])docs/(\w[\w./-]*?\.md)")
_SECTIONS = re.compile(r'docs/(\w[\w./-]*?\.md),\s*((?:"[^"\n]+"(?:,\s*|\s+and\s+)?)+)')


def _prose(text: str) -> str:
    """Markdown without its code blocks and inline code (formulas are not links or headings)."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", text, flags=re.S))


def _headings(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [m.group(1).replace("`", "").strip() for m in re.finditer(r"^#+\s+(.+)$", text, re.M)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_every_cited_docs_page_exists():
    cited = {}
    for name, text in TEXTS.items():
        for match in _DOC_REF.finditer(text):
            cited.setdefault(match.group(1), []).append(name)
    assert "measures.md" in cited  # the README and the docstrings cite it
    missing = {page: files for page, files in cited.items() if not (DOCS / page).is_file()}
    assert not missing, f"cited docs pages that do not exist: {missing}"


def test_every_cited_docs_section_exists():
    bad, n = [], 0
    for name, text in TEXTS.items():
        for match in _SECTIONS.finditer(text):
            page = DOCS / match.group(1)
            if not page.is_file():
                continue  # reported by test_every_cited_docs_page_exists
            headings = _headings(page)
            for section in re.findall(r'"([^"\n]+)"', match.group(2)):
                n += 1
                if section not in headings:
                    bad.append(f"{name}: docs/{match.group(1)} has no section {section!r}")
    assert n > 5, "the section citations were not found; is the pattern still right?"
    assert not bad, "\n".join(bad)


def test_markdown_links_resolve():
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    link = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
    bad = []
    for page in pages:
        for target in link.findall(_prose(page.read_text(encoding="utf-8"))):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                bad.append(f"{page.relative_to(ROOT)}: link to missing {target}")
            elif anchor and dest.suffix == ".md":
                if anchor not in {_slug(h) for h in _headings(dest)}:
                    bad.append(f"{page.relative_to(ROOT)}: no heading for #{anchor} in {path}")
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------ the docs name real things


def _docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_docs_name_functions_that_exist():
    names = sorted(set(re.findall(r"\bgrokinterp(?:\.[A-Za-z_]\w*)+", _docs_text())))
    assert len(names) > 30
    bad = []
    for dotted in names:
        try:
            _resolve(dotted)
        except (ImportError, AttributeError) as err:
            bad.append(f"{dotted}: {err}")
    assert not bad, "docs name code that does not exist:\n" + "\n".join(bad)


def test_docs_name_files_and_tests_that_exist():
    text = _docs_text()
    paths = set(re.findall(r"\b((?:grokinterp|tests|notebooks)/[\w/]+\.\w+)", text))
    missing = sorted(p for p in paths if not (ROOT / p).is_file())
    assert not missing, f"docs name files that do not exist: {missing}"
    defined = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)\(", path.read_text(), re.M))
    # test names are cited in the bullets and paragraphs that name a test file
    chunks = re.split(r"\n(?=- )|\n\s*\n", text)
    named = {
        name
        for chunk in chunks
        if "tests/test_" in chunk
        for name in re.findall(r"(?:`|::)(test_\w+)", chunk)
    }
    assert len(named) > 20
    assert not sorted(named - defined), f"docs name tests that do not exist: {named - defined}"


def test_every_measure_phase_field_and_column_is_documented():
    from grokinterp import files
    from grokinterp.analysis import ANALYSES
    from grokinterp.config import RunConfig
    from grokinterp.phases import PHASE_NAMES

    def undocumented(names, page):
        text = (DOCS / page).read_text(encoding="utf-8")
        headings = _headings(DOCS / page)
        return sorted(n for n in names if f"`{n}`" not in text and n not in headings)

    assert not undocumented(ANALYSES, "measures.md"), "table measures missing a definition"
    assert not undocumented(PHASE_NAMES, "phases.md"), "phase boundaries missing a rule"
    fields = [f.name for f in dataclasses.fields(RunConfig)]
    assert not undocumented(fields, "run-format.md"), "config fields missing"
    assert not undocumented(files.METRIC_COLUMNS, "run-format.md"), "metrics columns missing"


@pytest.mark.parametrize("page", ["measures.md", "phases.md", "reproducing-the-paper.md"])
def test_pages_cite_the_paper_by_its_arxiv_id(page):
    assert "arXiv:2301.05217" in (DOCS / page).read_text(encoding="utf-8")


# ------------------------------------------------- cited files and runs the repository has

# A cited data file, example spec or notebook: under docs/results/, examples/, notebooks/
# or tests/data/, written as a path from the repository root or from docs/.
_CITED_FILE = re.compile(
    r"(?<![\w/.-])((?:docs/)?results/[\w./-]+\.(?:csv|json|png|svg|html)"
    r"|examples/[\w.-]+\.toml|notebooks/[\w.-]+\.ipynb|tests/data/[\w./-]+\.\w+)"
)
# Runs are made by commands (checkpoints/, sweeps/ are ignored by git): no doc may say the
# repository holds one.
_RUN_IN_REPO = re.compile(
    r"committed\s+(?:default\s+|p ?= ?\d+\s+)?runs?\b(?!\s?\.csv|\s+table)"
    r"|repository's `?checkpoints/|checkpoints/` (?:of|in) the repository",
    re.I,
)


def _user_texts() -> dict[str, str]:
    """The pages a user reads: the README, docs/ and the notebooks."""
    return {
        name: text
        for name, text in TEXTS.items()
        if name == "README.md" or name.startswith(("docs/", "notebooks/"))
    }


def test_docs_cite_only_files_the_repository_has():
    bad, n = [], 0
    for name, text in _user_texts().items():
        for match in _CITED_FILE.finditer(text):
            path = match.group(1)
            n += 1
            here = (ROOT / name).parent
            if not any(p.is_file() for p in (ROOT / path, here / path, DOCS / path)):
                line = text.count("\n", 0, match.start()) + 1
                bad.append(f"{name}:{line}: {path}")
    assert n > 20, "no cited files found; is the pattern still right?"
    assert not bad, "docs cite files the repository does not have:\n" + "\n".join(bad)


def test_no_doc_says_the_repository_holds_a_run():
    hits = []
    for name, text in _user_texts().items():
        for match in _RUN_IN_REPO.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            hits.append(f"{name}:{line}: {match.group(0)!r}")
    assert not hits, "runs are not in the repository; give the command that makes one:\n" + (
        "\n".join(hits)
    )


def test_the_citation_patterns_catch_what_they_should():
    assert _CITED_FILE.search("see [runs.csv](results/wd-lr-p59/nothing.csv)")
    assert _CITED_FILE.search("examples/sweep-none.toml")
    for text in (
        "the committed default run groks at 8,730",
        "byte-identical to the committed\ndefault run",
        "the runs in the repository's `checkpoints/`",
    ):
        assert _RUN_IN_REPO.search(text), text
    for text in ("the committed runs.csv", "a committed runs table", "a run in checkpoints/"):
        assert not _RUN_IN_REPO.search(text), text


def test_committed_runs_tables_show_nothing_their_runs_did_not_see():
    import pandas as pd

    from grokinterp.sweep.table import blank_unseen

    tables = sorted((DOCS / "results").rglob("runs*.csv"))
    assert len(tables) >= 6
    for path in tables:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        where = path.relative_to(ROOT)
        assert {"cleanup_seen", "not_seen"} <= set(frame.columns), where
        unseen = ~frame["cleanup_seen"].astype(bool)
        for column in ("cleanup_end", "wnorm_cleanup_end", "key_freqs", "n_key_freqs"):
            shown = frame.loc[unseen, column].notna() & (frame.loc[unseen, column] != "")
            assert not shown.any(), f"{where}: {column} shown for runs whose cleanup was not seen"
        assert (frame.loc[unseen, "not_seen"].fillna("") != "").all(), f"{where}: no reason"
        # the rule, applied to the table from its own columns, finds nothing more to blank
        again = blank_unseen(frame)
        assert (again["cleanup_seen"] <= frame["cleanup_seen"].astype(bool)).all(), where
