"""The spec's Markdown and the clause table (conformance/clauses.py) agree.

Each clause has exactly one heading, in its capability's chapter, of the form

    ### `local.attr.roundtrip` — A value set is read back, ...

followed by its level word (**MUST**, **SHOULD** or **DESCRIBES**), a ``Holds for:`` line
and at least one ```python example. See spec/README.md, "How a clause is written".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance.clauses import BY_ID, CLAUSES, SPEC_FILES, Clause

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec"

#: A clause heading, exactly: level 3, the ID in backticks, an em dash, the title.
HEADING = re.compile(r"^### `(?P<id>[^`]+)` — (?P<title>\S.*?)\s*$")
#: Anything that starts out like a clause heading, to catch malformed ones.
HEADING_LIKE = re.compile(r"^#{1,6}\s*`")
#: Where a clause's section ends: any heading of level 1 to 3.
SECTION_END = re.compile(r"^#{1,3} ")
#: The ID scheme: lowercase words of letters, digits and hyphens, joined by dots.
ID_SCHEME = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$")
#: Bold RFC 2119 keywords and DESCRIBES; "MUST NOT" counts as MUST.
LEVEL_WORD = re.compile(r"\*\*(MUST|SHOULD|DESCRIBES)(?: NOT)?\*\*")
HOLDS_FOR = re.compile(r"^Holds for: (?P<profiles>\S+)\s*$")
FENCE = re.compile(r"^\s*(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")


@dataclass
class Section:
    """One clause heading and the lines under it, up to the next heading."""

    file: str
    line: int
    id: str
    title: str
    body: list[str] = field(default_factory=list)  # outside code blocks
    languages: list[str] = field(default_factory=list)  # of the fenced blocks in it

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def spec_files() -> list[Path]:
    return sorted(SPEC.glob("*.md"))


def parse(path: Path, name: str = "") -> tuple[list[Section], list[str]]:
    """The clause sections of one file, and the malformed clause-like headings in it."""
    name = name or path.relative_to(ROOT).as_posix()
    sections: list[Section] = []
    malformed: list[str] = []
    current: Section | None = None
    fence: str | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fence is not None:  # inside a fenced block: headings here are code
            closing = line.strip()
            if closing.startswith(fence) and not closing.lstrip(fence[0]):
                fence = None
            continue
        opened = FENCE.match(line)
        if opened:
            fence = opened.group("fence")
            if current is not None:
                current.languages.append(opened.group("lang"))
            continue
        match = HEADING.match(line)
        if match:
            current = Section(name, number, match.group("id"), match.group("title"))
            sections.append(current)
            continue
        if HEADING_LIKE.match(line):
            malformed.append(f"{name}:{number}: {line}")
        if SECTION_END.match(line):
            current = None
        elif current is not None:
            current.body.append(line)
    return sections, malformed


def all_sections() -> list[Section]:
    return [section for path in spec_files() for section in parse(path)[0]]


def sections_of(clause: Clause) -> list[Section]:
    return [s for s in all_sections() if s.id == clause.id]


def only_section(clause: Clause) -> Section:
    """The clause's one section. Without exactly one, the other checks have nothing to
    read: they skip, and test_clause_has_one_heading_in_its_chapter reports it."""
    found = sections_of(clause)
    if len(found) != 1:
        pytest.skip(f"{clause.id}: {len(found)} headings (reported by the heading test)")
    return found[0]


clause_ids = pytest.mark.parametrize("clause_id", [c.id for c in CLAUSES])


@clause_ids
def test_clause_id_follows_the_scheme(clause_id: str) -> None:
    """A clause ID is lowercase, dotted, and starts with its capability."""
    clause = BY_ID[clause_id]
    assert ID_SCHEME.match(clause.id), f"{clause.id!r} does not follow capability.topic.detail"
    assert clause.id.startswith(clause.capability + "."), (
        f"{clause.id!r} does not start with its capability {clause.capability!r}"
    )


@clause_ids
def test_clause_has_one_heading_in_its_chapter(clause_id: str) -> None:
    """Each clause has exactly one heading, in its capability's chapter."""
    clause = BY_ID[clause_id]
    chapter = ROOT / clause.spec_file
    assert chapter.is_file(), f"{clause.id}: its chapter {clause.spec_file} does not exist"
    found = sections_of(clause)
    assert [s.file for s in found] == [clause.spec_file], (
        f"{clause.id}: expected one heading in {clause.spec_file}, found it at "
        f"{[s.where for s in found] or 'no place'}"
    )


@clause_ids
def test_heading_title_matches_the_table(clause_id: str) -> None:
    clause = BY_ID[clause_id]
    section = only_section(clause)
    assert section.title == clause.title, f"{section.where}: title differs from clauses.py"


@clause_ids
def test_holds_for_line_matches_the_profiles(clause_id: str) -> None:
    clause = BY_ID[clause_id]
    section = only_section(clause)
    lines = [m.group("profiles") for m in map(HOLDS_FOR.match, section.body) if m]
    assert lines == [clause.profiles], (
        f"{section.where}: expected one line 'Holds for: {clause.profiles}', found {lines}"
    )


@clause_ids
def test_level_word_matches_the_level(clause_id: str) -> None:
    """The section's bold level words are all the clause's own level."""
    clause = BY_ID[clause_id]
    section = only_section(clause)
    words = {word for line in section.body for word in LEVEL_WORD.findall(line)}
    assert words == {clause.level}, (
        f"{section.where}: clause level is {clause.level}, the text uses {sorted(words) or 'none'}"
    )


@clause_ids
def test_clause_has_a_python_example(clause_id: str) -> None:
    clause = BY_ID[clause_id]
    section = only_section(clause)
    assert "python" in section.languages, f"{section.where}: no ```python example"


def test_every_heading_is_a_known_clause() -> None:
    """No heading in spec/ names a clause the table does not have."""
    unknown = [f"{s.where}: {s.id}" for s in all_sections() if s.id not in BY_ID]
    assert unknown == [], f"headings of clauses not in conformance/clauses.py: {unknown}"


def test_no_malformed_clause_headings() -> None:
    """A heading that starts with a backtick must be a well-formed clause heading."""
    malformed = [bad for path in spec_files() for bad in parse(path)[1]]
    assert malformed == [], f"expected ### `id` — Title, found: {malformed}"


def test_every_chapter_is_known() -> None:
    """The table's chapters are in spec/; a chapter with clause headings is in the table."""
    with_clauses = {s.file for s in all_sections()}
    unknown = sorted(with_clauses - set(SPEC_FILES.values()))
    assert unknown == [], f"clause headings in chapters clauses.py does not know: {unknown}"


def test_parser_reads_a_clause_section(tmp_path: Path) -> None:
    """The parser finds headings, levels, Holds-for lines and code blocks, not headings
    inside code."""
    text = (
        "# Chapter\n\n"
        "### `x.y` — A title\n\n"
        "It **MUST** work.\n\n"
        "Holds for: all\n\n"
        "```python\n### `not.a` — heading inside code\nassert True\n```\n\n"
        "## Next part\n\n"
        "### `x.z`- malformed\n"
    )
    path = tmp_path / "chapter.md"
    path.write_text(text, encoding="utf-8")
    sections, malformed = parse(path, "chapter.md")
    assert [(s.id, s.title) for s in sections] == [("x.y", "A title")]
    assert sections[0].languages == ["python"]
    assert "Holds for: all" in sections[0].body
    assert "It **MUST** work." in sections[0].body
    assert len(malformed) == 1 and "x.z" in malformed[0]
