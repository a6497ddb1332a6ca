"""README.md's "Pretrained weights" table is exactly what the registry generates
(`hrnet.weights.readme_table()`), so the README never lists a checkpoint the library does not have."""

from pathlib import Path

from hrnet.weights import readme_table

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "## Pretrained weights"


def _section_table(text: str) -> str:
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| arch |"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end]) + "\n"


def test_readme_table_matches_the_registry():
    text = README.read_text(encoding="utf-8")
    assert HEADING in text, f"README.md has no '{HEADING}' section"
    assert _section_table(text) == readme_table(), ("README.md's weights table differs from the registry: paste "
                                                   "python -c 'import hrnet.weights as w; print(w.readme_table())'")


def test_the_table_has_one_row_per_entry_with_the_metric():
    import hrnet

    rows = readme_table().splitlines()
    assert rows[0] == "| arch | tag | task | metric | source | licence |"
    assert len(rows) == 2 + len(hrnet.list_weights())
    assert "| `hrnet_w32` | `coco_256x192_udp` | pose | AP 76 | mmpose | Apache-2.0 |" in rows
    assert "| `hrnet_w48` | `cityscapes_ocr_official` | segmentation (ocr) | mIoU 81.6 | official | MIT |" in rows
