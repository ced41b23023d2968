"""Pictures of what the compiler did: each region's planned dataflow graph, drawn by Graphviz's
`dot` (an external program: Debian/Ubuntu `apt-get install graphviz`, macOS `brew install graphviz`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .gir.dot import program_dot
from .inspection import RegionDetail

FORMATS = ("svg", "png")


class GraphvizMissing(RuntimeError):
    """`dot` is not on PATH."""


def find_dot() -> str:
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing("Graphviz's `dot` is not on PATH: install Graphviz (Debian/Ubuntu: "
                              "apt-get install graphviz; macOS: brew install graphviz) to draw pictures; "
                              "the .dot text is written anyway")
    return dot


def render(dot_text: str, out: Path, fmt: str) -> Path:
    """Run `dot -T<fmt>` on `dot_text`, writing `out`."""
    if fmt not in FORMATS:
        raise ValueError(f"picture format {fmt!r}: expected one of {FORMATS}")
    proc = subprocess.run([find_dot(), f"-T{fmt}", "-o", str(out)], input=dot_text, text=True,
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed ({proc.returncode}): {proc.stderr.strip()[-1000:]}")
    return out


def caption(detail: RegionDetail) -> str:
    """What the picture shows: the region, its ops and DRAM traffic (ideal / naive / planned)."""
    r = detail.report
    return (f"{r['name']}: {' + '.join(r['ops'])}\n"
            f"DRAM bytes ideal {r['dram_bytes_ideal']}, naive {r['dram_bytes_naive']}, "
            f"planned {r['dram_bytes_planned']}; {r['kernels']} kernel(s)")


def region_dot(detail: RegionDetail) -> str:
    if detail.program is None:
        raise ValueError(f"{detail.name} was left to TVM ({detail.report.get('reason')}): no GIR to draw")
    return program_dot(detail.program, caption(detail))


def write_region_pictures(details: list[RegionDetail], directory: str | Path, fmt: str = "svg") -> list[Path]:
    """Per region IntelliGen took: `<name>.dot` and, when Graphviz is installed, `<name>.<fmt>`.
    Raises GraphvizMissing (after writing the .dot files) when `dot` is absent."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dots = []
    for detail in details:
        if detail.handled:
            path = directory / f"{detail.name}.dot"
            path.write_text(region_dot(detail))
            dots.append(path)
    find_dot()
    return [render(p.read_text(), p.with_suffix("." + fmt), fmt) for p in dots]
