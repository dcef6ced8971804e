"""One version for the package, the chart and the image, and a CHANGELOG entry for
it: the chart README's upgrade notes name a version before the current one, and
every install command in the docs uses the current one."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "keda-queue-scaler"


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def as_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_chart_and_the_package_share_one_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == version()


def test_the_changelog_leads_with_this_version_and_lists_each_once() -> None:
    entries = re.findall(r"^## (\S+) — (\d{4}-\d{2}-\d{2})$", (ROOT / "CHANGELOG.md").read_text(),
                         re.MULTILINE)  # fmt: skip
    versions = [v for v, _ in entries]
    assert versions[0] == version()
    assert versions == sorted(versions, key=as_tuple, reverse=True)
    assert len(set(versions)) == len(versions)


def test_upgrade_notes_name_an_earlier_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    notes = re.findall(r"Upgrading from (\S+) to (\S+)", (CHART / "README.md").read_text())
    assert notes, "the chart README says how to upgrade"
    for old, new in notes:
        assert as_tuple(old) < as_tuple(new) <= as_tuple(version()), (old, new)
        assert f"## {old} — " in changelog, old


def test_every_install_command_uses_this_version() -> None:
    docs = [ROOT / "README.md", CHART / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = 0
    for doc in docs:
        text = doc.read_text()
        for pattern in (r"image\.tag=([0-9][^\s]*)", r"keda_queue_scaler-([0-9.]+)-py3",
                        r"keda-queue-scaler:([0-9.]+)"):  # fmt: skip
            for mentioned in re.findall(pattern, text):
                found += 1
                assert mentioned == version(), (doc.name, mentioned)
    assert found >= 4
