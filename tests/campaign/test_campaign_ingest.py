"""The README's GPU section is regenerated between its markers, and only there."""

from __future__ import annotations

from intelligen_tvm.campaign import ingest


def test_readme_section_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# t\n\nbefore\n{ingest.BEGIN}\nold table\n{ingest.END}\nafter\n")
    ingest.update_readme(readme, "new table\n")
    text = readme.read_text()
    assert "old table" not in text and "new table" in text
    assert text.startswith("# t\n\nbefore\n") and text.endswith(f"{ingest.END}\nafter\n")
    ingest.update_readme(readme, "newer\n")
    assert readme.read_text().count(ingest.BEGIN) == 1 and "newer" in readme.read_text()


def test_readme_without_markers_gets_a_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# t\n")
    ingest.update_readme(readme, "table\n")
    assert readme.read_text() == f"# t\n\n## GPU campaign results\n\n{ingest.BEGIN}\ntable\n{ingest.END}\n"
