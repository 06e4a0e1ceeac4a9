"""The README's state diagram is generated from the machine; this fails when it is stale."""

from __future__ import annotations

import re
from pathlib import Path

from dgdr.domain.machine import mermaid

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_state_diagram_matches_the_machine() -> None:
    text = README.read_text()
    found = re.search(
        r"<!-- state-diagram:start -->\n```mermaid\n(.*?)```\n<!-- state-diagram:end -->",
        text,
        re.S,
    )
    assert found, "README.md lost its state-diagram markers"
    assert found.group(1) == mermaid(), (
        "README.md's state diagram is stale: replace it with the output of "
        '`uv run python -c "from dgdr.domain.machine import mermaid; print(mermaid())"`'
    )
