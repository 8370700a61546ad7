"""docs/sbatch.md lists exactly the option table, with its treatments, notes and counts.

On a mismatch, rewrite the doc's tables from adapter.sbatch.options:

    .venv/bin/python -m tests.unit.sbatch.test_docs
"""

from __future__ import annotations

import pathlib
import re
from collections import Counter

from adapter.sbatch.options import OPTIONS, Treatment

DOC = pathlib.Path(__file__).parents[3] / "docs" / "sbatch.md"
SECTIONS: dict[str, Treatment] = {
    "Translated": "translated",
    "Passed": "passed",
    "Refused": "refused",
}
REGENERATE = "regenerate: .venv/bin/python -m tests.unit.sbatch.test_docs"


def table(treatment: Treatment) -> str:
    lines = ["| Option | Short | Note |", "| --- | --- | --- |"]
    for option in sorted((o for o in OPTIONS if o.treatment == treatment), key=lambda o: o.name):
        name = f"`--{option.name}`" + (" (bai)" if option.bai_only else "")
        short = f"`-{option.short}`" if option.short else ""
        lines.append(f"| {name} | {short} | {option.note} |")
    return "\n".join(lines)


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^### {heading}\n\n(\|.*?)\n\n", text, re.S | re.M)
    assert match, f"docs/sbatch.md has no table under ### {heading}"
    return match.group(1)


def test_the_tables_are_the_option_table() -> None:
    text = DOC.read_text()
    for heading, treatment in SECTIONS.items():
        assert _section(text, heading) == table(treatment), REGENERATE
    rows = re.findall(r"^\| `--([a-z-]+)`", text, re.M)
    assert sorted(rows) == sorted(o.name for o in OPTIONS)


def test_the_counts() -> None:
    counts = Counter(o.treatment for o in OPTIONS)
    sentence = (
        f"{len(OPTIONS)} in all, {counts['translated']} translated, {counts['passed']} passed "
        f"and {counts['refused']} refused"
    )
    assert sentence in " ".join(DOC.read_text().split())


def test_the_tables_fit_80_columns() -> None:
    for heading in SECTIONS:
        assert max(len(line) for line in _section(DOC.read_text(), heading).splitlines()) <= 80


def test_the_service_side_section_is_there() -> None:
    assert "\n## How a job runs\n" in DOC.read_text()


def _rewrite() -> None:
    text = DOC.read_text()
    for heading, treatment in SECTIONS.items():
        text = text.replace(_section(text, heading), table(treatment))
    counts = Counter(o.treatment for o in OPTIONS)
    text = re.sub(
        r"\d+ in all, \d+ translated, \d+ passed(\s+)and \d+(\s+)refused",
        lambda m: (
            f"{len(OPTIONS)} in all, {counts['translated']} translated, "
            f"{counts['passed']} passed{m.group(1)}and {counts['refused']}{m.group(2)}refused"
        ),
        text,
    )
    DOC.write_text(text)


if __name__ == "__main__":
    _rewrite()
