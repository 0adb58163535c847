"""Wiki pages: `wiki/<slug>.md`, slug checks and confinement, frontmatter tags, sections, atoms."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from mnemara.errors import MnemaraError
from mnemara.memory.wiki import (MAX_PAGE_BYTES, Wiki, WikiError, WikiPage, page_atoms,
                                 parse_frontmatter, sections, validate_slug)


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path, Wiki]:
    """(instance dir, a directory outside the wiki holding a secret, the Wiki)."""
    instance = tmp_path / "instance"
    instance.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("TOP SECRET\n")
    return instance, outside, Wiki(instance / "wiki")


def tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file() and not p.is_symlink()}


def page(text: str, slug: str = "p") -> WikiPage:
    tags, body, body_line = parse_frontmatter(text)
    return WikiPage(slug, Path(f"/x/{slug}.md"), text, body, tags, "2026-12-05T10:00:00Z", body_line)


# -- slugs --------------------------------------------------------------------------------------

@pytest.mark.parametrize("given, slug", [
    ("deploy/staging", "deploy/staging"),
    ("deploy/staging.md", "deploy/staging"),
    ("  notes  ", "notes"),
    ("v1.2_release-notes", "v1.2_release-notes"),
    ("a/b/c/d/e/f/g/h", "a/b/c/d/e/f/g/h"),
    ("Readme", "Readme"),
])
def test_valid_slugs_are_normalised(given, slug):
    assert validate_slug(given) == slug


def test_wiki_error_is_a_one_line_value_error_and_a_user_error():
    with pytest.raises(WikiError) as info:
        validate_slug("../x")
    assert isinstance(info.value, ValueError) and isinstance(info.value, MnemaraError)
    message = str(info.value)
    assert "\n" not in message and "letters, digits" in message


ABUSE = [
    "",
    "   ",
    ".md",
    "../x",
    "a/../../x",
    "a/./b",
    "/etc/passwd",
    "//etc/passwd",
    "..%2fx",
    "%2e%2e/x",
    "a\\b",
    "..\\..\\x",
    "a\x00b",
    "a\nb",
    "a\tb",
    ".hidden",
    "a/.git/config",
    "a//b",
    "a/",
    "~/x",
    "~root/x",
    "a b",
    "x" * 201,
    "/".join("a" * 9),
    "x.md/y",
    "dépôt",
    "a:b",
    "*",
]


@pytest.mark.parametrize("slug", ABUSE, ids=[repr(s)[:30] for s in ABUSE])
def test_abusive_slugs_are_refused_everywhere_and_nothing_is_written(slug, layout):
    instance, outside, wiki = layout
    before_outside, before_instance = tree(outside), tree(instance)
    with pytest.raises(WikiError):
        validate_slug(slug)
    with pytest.raises(WikiError):
        wiki.write(slug, "pwned")
    with pytest.raises(WikiError):
        wiki.write(slug, "pwned", mode="append")
    with pytest.raises(WikiError):
        wiki.read(slug)
    assert tree(outside) == before_outside
    assert tree(instance) == before_instance


def test_non_text_slug_is_refused():
    with pytest.raises(WikiError):
        validate_slug(None)  # type: ignore[arg-type]


def test_symlinked_directory_inside_wiki_is_not_followed(layout):
    instance, outside, wiki = layout
    wiki.write("ok", "fine")
    (instance / "wiki" / "evil").symlink_to(outside)
    before = tree(outside)
    with pytest.raises(WikiError, match="outside the wiki"):
        wiki.read("evil/secret")
    with pytest.raises(WikiError, match="outside the wiki"):
        wiki.write("evil/secret", "pwned")
    with pytest.raises(WikiError, match="outside the wiki"):
        wiki.write("evil/new/page", "pwned", mode="append")
    assert tree(outside) == before
    assert not (outside / "new").exists()
    assert [e.slug for e in wiki.list()] == ["ok"]


def test_symlinked_page_pointing_out_is_not_followed(layout):
    instance, outside, wiki = layout
    wiki.write("ok", "fine")
    (instance / "wiki" / "leak.md").symlink_to(outside / "secret.md")
    with pytest.raises(WikiError, match="outside the wiki"):
        wiki.read("leak")
    with pytest.raises(WikiError, match="outside the wiki"):
        wiki.write("leak", "pwned")
    assert (outside / "secret.md").read_text() == "TOP SECRET\n"
    assert [e.slug for e in wiki.list()] == ["ok"]


def test_dangling_symlink_pointing_out_is_not_written_through(layout):
    instance, outside, wiki = layout
    wiki.write("ok", "fine")
    (instance / "wiki" / "trap.md").symlink_to(outside / "created.md")
    (instance / "wiki" / "trapdir").symlink_to(outside / "newdir")
    with pytest.raises(WikiError, match="outside the wiki"):
        wiki.write("trap", "pwned")
    with pytest.raises(WikiError, match="outside the wiki"):
        wiki.write("trapdir/page", "pwned")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.md"]


def test_symlink_inside_the_wiki_pointing_inside_is_allowed(layout):
    instance, _, wiki = layout
    wiki.write("real", "the page")
    (instance / "wiki" / "alias.md").symlink_to("real.md")
    assert wiki.read("alias").body == "the page\n"


def test_the_wiki_dir_itself_may_be_a_symlink(tmp_path):
    real = tmp_path / "synced"
    real.mkdir()
    (tmp_path / "wiki").symlink_to(real)
    Wiki(tmp_path / "wiki").write("a/b", "hello")
    assert (real / "a" / "b.md").read_text() == "hello\n"


def test_a_fifo_planted_as_a_page_does_not_hang(layout):
    instance, _, wiki = layout
    wiki.write("ok", "fine")
    os.mkfifo(instance / "wiki" / "pipe.md")
    with pytest.raises(WikiError, match="not a regular file"):
        wiki.read("pipe")
    assert [e.slug for e in wiki.list()] == ["ok"]


# -- read / write / list ------------------------------------------------------------------------

def test_round_trip_with_private_modes(layout):
    instance, _, wiki = layout
    written = wiki.write("deploy/staging.md", "# Staging\nssh staging-1\n")
    assert written.slug == "deploy/staging"
    path = instance / "wiki" / "deploy" / "staging.md"
    assert written.path == path.resolve()
    assert path.read_text() == "# Staging\nssh staging-1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((instance / "wiki").stat().st_mode) == 0o700
    assert stat.S_IMODE((instance / "wiki" / "deploy").stat().st_mode) == 0o700
    read = wiki.read("deploy/staging")
    assert read == written
    assert read.body == read.text and read.tags == ()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", read.updated_at)


def test_nested_directories_all_get_0700(layout):
    instance, _, wiki = layout
    wiki.write("a/b/c/d", "deep")
    for rel in ("wiki", "wiki/a", "wiki/a/b", "wiki/a/b/c"):
        assert stat.S_IMODE((instance / rel).stat().st_mode) == 0o700, rel


def test_replace_and_append(layout):
    _, _, wiki = layout
    wiki.write("log", "first\n\n\n")
    assert wiki.write("log", "second", mode="append").text == "first\n\nsecond\n"
    assert wiki.write("log", "\nthird\n", mode="append").text == "first\n\nsecond\n\nthird\n"
    assert wiki.write("log", "fresh").text == "fresh\n"
    assert wiki.write("new", "only", mode="append").text == "only\n"


def test_write_leaves_no_temp_files(layout):
    instance, _, wiki = layout
    for i in range(3):
        wiki.write("p", f"v{i}", mode="append")
    names = sorted(p.name for p in (instance / "wiki").iterdir())
    assert names == [".wiki.lock", "p.md"]


@pytest.mark.parametrize("content", ["", "  \n\t"])
def test_empty_content_is_refused(content, layout):
    _, _, wiki = layout
    with pytest.raises(WikiError, match="needs some text"):
        wiki.write("p", content)


def test_size_cap_for_replace_and_append(layout):
    _, _, wiki = layout
    with pytest.raises(WikiError, match="limit is 1,000,000"):
        wiki.write("big", "x" * (MAX_PAGE_BYTES + 1))
    wiki.write("big", "x" * (MAX_PAGE_BYTES - 10))
    with pytest.raises(WikiError, match="would be"):
        wiki.write("big", "y" * 20, mode="append")
    assert "y" not in wiki.read("big").text


def test_unknown_mode_is_refused(layout):
    with pytest.raises(WikiError, match="'replace' or 'append'"):
        layout[2].write("p", "x", mode="prepend")


def test_missing_page_says_how_to_find_pages(layout):
    _, _, wiki = layout
    with pytest.raises(WikiError, match=r"^no wiki page 'nope'; wiki_list shows the pages$"):
        wiki.read("nope")
    wiki.write("some", "thing")
    with pytest.raises(WikiError, match="no wiki page 'nope'"):
        wiki.read("nope.md")


def test_list_sorted_with_prefix_tags_and_title(layout):
    instance, _, wiki = layout
    assert wiki.list() == []
    wiki.write("zeta", "z")
    wiki.write("deploy/staging", "---\ntags: [ops, deploy]\n---\n# Staging box\ntext")
    wiki.write("deploy/prod", "# Prod\n")
    wiki.write("deployment-notes", "n")
    (instance / "wiki" / "README.txt").write_text("not a page")
    (instance / "wiki" / ".draft.md").write_text("hidden")
    (instance / "wiki" / "has space.md").write_text("not a valid slug")
    entries = wiki.list()
    assert [e.slug for e in entries] == ["deploy/prod", "deploy/staging", "deployment-notes", "zeta"]
    staging = entries[1]
    assert staging.tags == ("ops", "deploy") and staging.title == "Staging box"
    assert staging.size == len("---\ntags: [ops, deploy]\n---\n# Staging box\ntext\n")
    assert [e.slug for e in wiki.list("deploy/")] == ["deploy/prod", "deploy/staging"]
    assert [e.slug for e in wiki.list("deploy")] == ["deploy/prod", "deploy/staging", "deployment-notes"]
    assert wiki.list("nothing") == []
    for bad in ("../", "/etc", "a//b"):
        with pytest.raises(WikiError):
            wiki.list(bad)


# -- frontmatter --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, tags", [
    ("---\ntags: [a, b]\n---\nbody\n", ("a", "b")),
    ("---\ntags: a, b\n---\nbody\n", ("a", "b")),
    ("---\ntitle: T\ntags: ['x y', \"z\"]\nowner: me\n---\nbody\n", ("x y", "z")),
    ("---\ntags:\n  - one\n  - two\nother: 1\n---\nbody\n", ("one", "two")),
    ("---\nTags: solo\n---\nbody\n", ("solo",)),
    ("---\ntags: [a, a, , b]\n---\nbody\n", ("a", "b")),
    ("---\ntags: []\n---\nbody\n", ()),
    ("---\nowner: me\n---\nbody\n", ()),
])
def test_frontmatter_tags(text, tags):
    got, body, body_line = parse_frontmatter(text)
    assert got == tags
    assert body == "body\n"
    assert body_line == text.count("\n")


@pytest.mark.parametrize("text", ["no frontmatter\n", "---\ntags: [a]\nnever closed\n",
                                  "---\nA page between two rules.\n---\nmore\n",
                                  "text\n---\ntags: [a]\n---\n", ""])
def test_text_without_a_leading_block_has_no_tags(text):
    assert parse_frontmatter(text) == ((), text, 1)


def test_written_page_keeps_other_frontmatter_keys(layout):
    _, _, wiki = layout
    text = "---\nowner: ops\ntags: [deploy]\n---\n# Steps\nrun it\n"
    page_ = wiki.write("p", text)
    assert page_.text == text and page_.tags == ("deploy",)
    assert page_.body == "# Steps\nrun it\n"


# -- sections and atoms -------------------------------------------------------------------------

DOC = """\
---
tags: [ops, deploy]
---
Intro paragraph.

# Staging
ssh staging-1

```bash
# not a heading, a shell comment
make deploy
```

## Rollback ##
~~~
## also not a heading
~~~
git revert
# Empty
## C#
about C#
#hashtag is text
"""


def test_sections_split_at_headings_outside_fences():
    got = sections(page(DOC))
    assert [(s.n, s.heading, s.line) for s in got] == [
        (1, "", 4), (2, "Staging", 6), (3, "Rollback", 14), (4, "C#", 20)]
    assert got[0].text == "Intro paragraph."
    assert got[1].text == ("# Staging\nssh staging-1\n\n```bash\n# not a heading, a shell comment\n"
                           "make deploy\n```")
    assert got[2].text == "## Rollback ##\n~~~\n## also not a heading\n~~~\ngit revert"
    assert got[3].text == "## C#\nabout C#\n#hashtag is text"
    lines = DOC.splitlines()
    for s in got:
        assert lines[s.line - 1] == s.text.splitlines()[0]


def test_sections_of_a_page_without_headings_or_frontmatter():
    got = sections(page("\n\nJust text\nmore\n"))
    assert [(s.n, s.heading, s.line, s.text) for s in got] == [(1, "", 3, "Just text\nmore")]
    assert sections(page("")) == []
    assert sections(page("# Only a title\n")) == []


def test_unclosed_fence_swallows_the_rest():
    got = sections(page("# A\n```\n# inside\n"))
    assert [s.heading for s in got] == ["A"]


def test_page_atoms(layout):
    _, _, wiki = layout
    written = wiki.write("deploy/staging", DOC)
    atoms = page_atoms(written)
    assert [a.id for a in atoms] == [f"wiki:deploy/staging#{n}" for n in (1, 2, 3, 4)]
    first = atoms[1]
    assert first.kind == "wiki" and first.source == "wiki/deploy/staging.md"
    assert first.line == 6 and first.category == "ops,deploy"
    assert first.created_at == written.updated_at
    assert first.text.startswith("# Staging\n")
    assert page_atoms(wiki.read("deploy/staging")) == atoms
