"""Make docs/report.png, the README's picture of the HTML report: a failing comparison's page,
rendered by headless Chromium (tests/chromium.py), its top part, scaled down and palette-quantized.

    PYTHONPATH=. python docs/report_screenshot.py
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

COMMAND = ["compare", "--reference", "caffe", "--set", "reference.padding=1", "--candidate", "nn", "--strides", "2",
           "--shape", "1,32,32,3"]
# The verdict and the first tables (up to the kernels table), then the difference map.
FIGURE = 900


def main() -> None:
    from PIL import Image

    from chromium import visit

    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        subprocess.run([sys.executable, "-m", "convdiff", *COMMAND, "--report", str(page), "--quiet"], check=False)
        seen = visit(page, {
            "figures": "document.querySelector('figure').getBoundingClientRect().top + scrollY",
            "kernels": "[...document.querySelectorAll('caption')].find(c => c.textContent.startsWith('Kernels'))"
                       ".getBoundingClientRect().top + scrollY"}, width=1100)
    shot = Image.open(io.BytesIO(seen.screenshot)).convert("RGB")
    figure_top, top_height = int(seen.values["figures"]), int(seen.values["kernels"]) - 8
    top = shot.crop((0, 0, shot.width, top_height))
    figure = shot.crop((0, figure_top - 40, shot.width, figure_top - 40 + FIGURE))
    picture = Image.new("RGB", (shot.width, top_height + FIGURE), "white")
    picture.paste(top, (0, 0))
    picture.paste(figure, (0, top_height))
    picture = picture.resize((picture.width * 3 // 4, picture.height * 3 // 4), Image.LANCZOS)
    picture = picture.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    picture.save(ROOT / "docs" / "report.png", optimize=True)
    print(f"wrote docs/report.png ({(ROOT / 'docs' / 'report.png').stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
