"""The Markdown docs hold together: every relative link points at a file that
exists, every `#anchor` matches a heading of its target (GitHub's slugs), and
the README stays short. Reads files only: no network, no server."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 260
# Always checked, whether or not git tracks them yet.
REQUIRED = ["README.md", "docs/README.md", "deploy/README.md", "bench/README.md"]
# Folders that hold no docs of ours: anywhere (tools, caches), and at these paths (run outputs).
_SKIP_NAMES = {"node_modules", "__pycache__"}
_SKIP_PATHS = {"build", "dist", "data", "bench/results"}

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)     # http:, https:, mailto:, ...


def markdown_files() -> list[Path]:
    """Every .md file of the project's own (not those of tools or outputs)."""
    found: set[Path] = {ROOT / p for p in REQUIRED}
    for dirpath, dirnames, filenames in os.walk(ROOT):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not _skipped(here / d)]
        found.update(here / f for f in filenames if f.endswith(".md"))
    return sorted(found)


def _skipped(folder: Path) -> bool:
    name = folder.name
    return (name.startswith(".") or name in _SKIP_NAMES or name.endswith(".egg-info")
            or (folder / "pyvenv.cfg").exists()                 # a virtual environment, whatever its name
            or folder.relative_to(ROOT).as_posix() in _SKIP_PATHS)


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out, fenced = [], None
    for number, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if m:
            if fenced is None:
                fenced = m.group(1)
            elif m.group(1) == fenced:
                fenced = None
            continue
        if fenced is None:
            out.append((number, line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: the rendered text lowercased, every
    character but letters, digits, `-`, `_` and spaces dropped, spaces to `-`."""
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)     # a link: its text
    text = re.sub(r"<[^>]+>", "", text)                         # inline HTML tags
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors GitHub makes for a file's headings (duplicates get -1, -2, ...)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        out.update(_HTML_ANCHOR.findall(line))
        m = _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image in the prose."""
    out = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        m = _REF_DEF.match(line)
        if m:
            out.append((number, m.group(1)))
            continue
        bare = _CODE_SPAN.sub("", line)
        out.extend((number, t) for t in _LINK.findall(bare))
    return out


def problems(path: Path, anchor_cache: dict[Path, set[str]]) -> list[str]:
    found = []
    where = path.relative_to(ROOT)
    for number, target in links(path):
        if not target or _EXTERNAL.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part.split("?", 1)[0])
        if file_part.startswith("/"):
            dest = ROOT / file_part.lstrip("/")
        elif file_part:
            dest = path.parent / file_part
        else:
            dest = path
        dest = Path(os.path.normpath(dest))
        if not dest.exists():
            found.append(f"{where}:{number}: {target}: no such file")
            continue
        if ROOT not in dest.parents and dest != ROOT:
            found.append(f"{where}:{number}: {target}: points outside the repository")
            continue
        if anchor:
            if dest.suffix != ".md" or dest.is_dir():
                found.append(f"{where}:{number}: {target}: an anchor into a file that is not Markdown")
                continue
            if dest not in anchor_cache:
                anchor_cache[dest] = anchors(dest)
            if unquote(anchor).lower() not in anchor_cache[dest]:
                found.append(f"{where}:{number}: {target}: no heading '#{anchor}' in {dest.relative_to(ROOT)}")
    return found


FILES = markdown_files()


def test_the_docs_that_must_exist_do():
    missing = [p for p in REQUIRED if not (ROOT / p).is_file()]
    assert not missing, f"missing: {missing}"


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_every_relative_link_and_anchor_resolves(path: Path):
    if not path.is_file():
        pytest.skip(f"{path.relative_to(ROOT)} does not exist")
    found = problems(path, {})
    assert not found, "broken links:\n" + "\n".join(found)


def test_the_readme_stays_short():
    lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, (f"README.md has {lines} lines; keep it under {README_MAX_LINES} "
                                       "and move detail to docs/")


# -- the checker itself ---------------------------------------------------------------

@pytest.mark.parametrize("heading, expected", [
    ("Set-up and the two commands", "set-up-and-the-two-commands"),
    ("`openai`, `openai_compatible`", "openai-openai_compatible"),
    ("Local GPU video: `type: diffusers` and `gateway worker`", "local-gpu-video-type-diffusers-and-gateway-worker"),
    ("Limits, budgets and cost", "limits-budgets-and-cost"),
    ("What's new? (v2)", "whats-new-v2"),
    ("Remix, edits, extensions", "remix-edits-extensions"),
    ("A [linked](x.md) heading", "a-linked-heading"),
    ("  spaced  out  ", "spaced--out"),
])
def test_slugs_follow_githubs_rules(heading: str, expected: str):
    assert slug(heading) == expected


def test_duplicate_headings_get_numbered(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("# Tests\n\n## Tests\n\n```\n# not a heading\n```\n\n## Tests\n", encoding="utf-8")
    assert anchors(page) == {"tests", "tests-1", "tests-2"}


def test_broken_links_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# Known heading\n", encoding="utf-8")
    page = tmp_path / "docs" / "a.md"
    page.write_text(
        "# Top\n\n"
        "[ok](b.md#known-heading) [ok too](#top) [web](https://example.com/#x) `[not](a-link.md)`\n"
        "[gone](missing.md) [bad anchor](b.md#unknown) [bad local](#nowhere)\n"
        "```\n[inside a fence](ignored.md)\n```\n",
        encoding="utf-8")
    found = problems(page, {})
    assert [f.split(": ", 1)[1] for f in found] == [
        "missing.md: no such file",
        "b.md#unknown: no heading '#unknown' in docs/b.md",
        "#nowhere: no heading '#nowhere' in docs/a.md",
    ]
