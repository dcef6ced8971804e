"""The documentation's relative links lead somewhere: every linked file exists and
every #anchor is a heading of the page it points to (GitHub's anchor rules)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PAGES = sorted(
    [
        ROOT / "README.md",
        *ROOT.glob("docs/*.md"),
        *ROOT.glob("charts/*/README.md"),
        ROOT / "bench" / "README.md",
    ]
)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    text = FENCE.sub("", page.read_text())
    out = set()
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        out.add(slug)
    return out


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    return LINK.findall(re.sub(r"`[^`\n]*`", "", text))  # not in code spans


def broken(page: Path) -> list[str]:
    bad = []
    for target in links(page):
        if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.name}")
    return bad


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    assert broken(page) == []


def test_the_link_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n## Two words\n")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md#two-words) [gone](c.md) [typo](a.md#two-word) `[x](y)`\n")
    assert broken(page) == ["c.md: no such file", "a.md#two-word: no heading #two-word in a.md"]


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    reachable = {ROOT / "README.md"}
    todo = [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        for target in links(page):
            path = target.partition("#")[0]
            if not path or re.match(r"^[a-z]+:", path):
                continue
            dest = (page.parent / path).resolve()
            if dest.suffix == ".md" and dest.exists() and dest not in reachable:
                reachable.add(dest)
                todo.append(dest)
    assert set(ROOT.glob("docs/*.md")) <= reachable


def test_the_readme_is_a_way_in() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 200
    for command in ("make demo", "make run", "make test", "helm install", "scalerType"):
        assert command in text


def test_the_drop_in_claim_carries_its_caveats() -> None:
    """Where the README says "drop-in", it says what changes meaning on the way: KEDA
    reads enableTLS for its own connection to the scaler, identityOwner: operator is
    the scaler's identity, and --kubernetes reads Secrets."""
    text = (ROOT / "README.md").read_text()
    bullet = text[text.index("- **Drop-in.**") :]
    bullet = bullet[: bullet.index("\n- **")]
    for caveat in ('`enableTLS: "true"`', "*the scaler* with TLS", "`identityOwner: operator`",
                   "the scaler's identity", "`--kubernetes` needs read access to Secrets"):  # fmt: skip
        assert caveat in " ".join(bullet.split()), caveat
    for doc, said in (("redis.md", "enableTLS"), ("sqs.md", "identityOwner")):
        assert said in (ROOT / "docs" / doc).read_text()
