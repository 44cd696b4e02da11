"""The HTML report: self-contained, escaped, and its SVG charts render in headless Chromium."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from dataops_dev.report.html import render_html
from tests.report.factory import HOSTILE, large_report, small_report

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def test_self_contained_and_escaped() -> None:
    page = render_html(small_report())
    assert page.startswith("<!DOCTYPE html>")
    # No script, no external resource of any kind.
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page
    assert "<link" not in page
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "prefers-color-scheme: dark" in page
    # Charts: the impact DAG, one row chart per model, a histogram and a top-values chart.
    assert page.count('aria-label="impact graph"') == 1
    assert page.count('aria-label="row counts base vs head"') == 5
    assert 'aria-label="distribution of amount, base vs head"' in page
    assert 'aria-label="top values of status, base vs head"' in page
    assert "0b794e72be@masked.invalid" in page  # masked examples are shown
    assert page.count("<svg") == page.count("</svg>")


def test_large_report_graph_and_details_are_budgeted() -> None:
    page = render_html(large_report(300), max_details=50)
    assert page.count('class="node ') == 101
    assert "more node" in page
    assert page.count('<details class="model"') == 50
    assert "Details of 250 more models left out" in page


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name) or (
            f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
        )
        if path:
            return path
    pytest.fail(
        "Chromium is not installed: `apt-get install -y chromium` (./dev test installs it in CI)"
    )


def _png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """A minimal PNG decoder (8-bit RGB/RGBA, non-interlaced): what Chromium writes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    height = depth = color = interlace = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    offset = 0
    for _ in range(height):
        filter_type = raw[offset]
        line = bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
        previous = line
        # Every 4th pixel is plenty to judge the picture and keeps the pure-Python decoder quick.
        for x in range(0, width, 4):
            j = x * channels
            pixels.append((line[j], line[j + 1], line[j + 2]))
    return width, height, pixels


@pytest.mark.slow
def test_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(small_report()), "utf-8")
    chromium = _chromium()
    profile = tmp_path / "profile"
    shot = tmp_path / "shot.png"
    common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    result = subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1400,3000", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists(), result.stderr.decode(errors="replace")[-2000:]
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1400, 3000)
    colours = Counter(pixels)
    background, share = colours.most_common(1)[0]
    assert share < 0.95 * len(pixels), "the page is blank"
    assert len(colours) > 50
    # The "head" bars (#fb8500) and "base" bars (#8c959f) of the SVG charts are painted.
    head = sum(n for (r, g, b), n in colours.items() if abs(r - 251) + abs(g - 133) + b < 30)
    base = sum(
        n for (r, g, b), n in colours.items() if abs(r - 140) + abs(g - 149) + abs(b - 159) < 12
    )
    assert head > 300, head
    assert base > 300, base

    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=False,
        text=True,
    ).stdout
    assert dom.count("<svg") >= 8
    assert len(re.findall(r"<rect ", dom)) > 100
    assert "<polygon" in dom  # the exposure hexagon
