"""The HTML report: one self-contained page (no script, nothing to fetch), the verdict line first,
user text escaped, and the page rendered by a real browser (headless Chromium) without a request."""

import html
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from convdiff.cli import cli

HERE = Path(__file__).resolve().parent
SMALL = ["--shape", "1,12,12,3", "--filters", "4"]
FAILING = ["compare", "--reference", "caffe", "--set", "reference.padding=1", "--candidate", "nn", "--strides", "2",
           *SMALL]
HOSTILE = "<script>alert(1)</script> & \"quotes\""


def write_report(runner, args, path):
    result = runner.invoke(cli, [*args, "--report", str(path)], catch_exceptions=False)
    assert f"wrote the HTML report to {path}" in result.stderr
    return result, path.read_text(encoding="utf-8")


def body_text_elements(page):
    """The body's elements in order, by tag and class (the page is XHTML-clean enough for a regex)."""
    body = page.split("<body>", 1)[1]
    return re.findall(r"<(\w+)(?: class=\"([^\"]*)\")?", body)


def assert_self_contained(page):
    assert "<script" not in page.lower()
    assert "default-src 'none'" in page  # the browser may fetch nothing, whatever the page holds
    for attribute in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert attribute.startswith("data:image/svg+xml;base64,"), attribute[:60]
    assert "@import" not in page and "url(" not in page


def test_compare_page_puts_the_verdict_first_then_tables_figures_diagnosis_spec_environment(cli_runner, tmp_path):
    result = cli_runner.invoke(cli, [*FAILING, "--quiet", "--report", str(tmp_path / "r.html")])
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert result.exit_code == 1 and result.stderr == ""  # --quiet: not even where the report went
    verdict = result.stdout.strip()
    assert verdict.startswith("mismatch: ") and "\n" not in verdict
    assert body_text_elements(page)[0] == ("p", "verdict fail")
    assert html.unescape(re.search(r'id="verdict">([^<]*)<', page).group(1)) == verdict
    order = [page.index(s) for s in ("<caption>Outputs</caption>", "<h3>Figures</h3>", "<h3>Diagnosis</h3>",
                                     "<h3>Specification of each side</h3>", "<h2>Environment</h2>")]
    assert order == sorted(order)
    assert page.count("<img src=\"data:image/svg+xml;base64,") == 4  # map, scatter, histogram, kernels
    assert "explained by: padding" in page
    assert_self_contained(page)


def test_a_passing_compare_page_and_an_identical_one(cli_runner, tmp_path):
    _, page = write_report(cli_runner, ["compare", "--reference", "numpy", "--candidate", "nn", *SMALL],
                           tmp_path / "p.html")
    assert body_text_elements(page)[0] == ("p", "verdict pass") and "equivalent: all 576 elements" in page
    assert page.count("data:image/svg+xml") == 4 and "<h3>Diagnosis</h3>" not in page
    _, page = write_report(cli_runner, ["compare", "--init", "ones", *SMALL], tmp_path / "i.html")
    assert "identical: outputs are bitwise equal" in page and "there is no difference to draw" in page
    assert "data:image" not in page


def test_user_text_is_escaped(cli_runner, tmp_path):
    experiment = tmp_path / "x.toml"
    experiment.write_text(f"""name = '{HOSTILE}'
[spec]
input_shape = [1, 6, 6, 1]
filters = 1
[[case]]
name = '{HOSTILE} case'
reference = "numpy"
candidate = "nn"
expect = "identical"
""")
    result, page = write_report(cli_runner, ["run", str(experiment)], tmp_path / "x.html")
    assert result.exit_code == 1  # float64 vs float32 is not bitwise identical: the case is unexpected
    assert HOSTILE not in page and "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quotes&#34; case" in page
    assert_self_contained(page)


def test_run_page_has_the_summary_and_every_case(cli_runner, tmp_path):
    port_check = Path(__file__).resolve().parents[2] / "examples" / "port-check.toml"
    result, page = write_report(cli_runner, ["run", str(port_check)], tmp_path / "run.html")
    assert result.exit_code == 0
    assert body_text_elements(page)[0] == ("p", "verdict pass")
    assert re.search(r'id="verdict">2 of 2 cases as expected<', page)
    assert "<caption>convdiff run</caption>" in page
    assert page.count('<section class="case">') == 2 and "port-check / reference-vs-keras" in page
    assert_self_contained(page)


def test_sweep_page_has_every_config_and_the_worst_of_each_group(cli_runner, tmp_path):
    args = ["sweep", "--reference", "caffe", "--set", "reference.padding=1", "--candidate", "nn", "--padding",
            "same", "--kernel-size", "3", "--strides", "1,2", "--input-size", "7,8", "--channels", "2",
            "--filters", "2"]
    result, page = write_report(cli_runner, args, tmp_path / "s.html")
    assert result.exit_code == 1
    assert body_text_elements(page)[0] == ("p", "verdict fail")
    assert page.count('<section class="case">') == 1 and "padding: worst of 1" in page
    assert len(re.findall(r"<tr><td>000\d ", page)) == 4
    assert_self_contained(page)


def test_report_paths_and_the_extra_are_checked_before_anything_runs(cli_runner, tmp_path, monkeypatch):
    missing = tmp_path / "no" / "r.html"
    for args in (FAILING, ["run", "ones-filter"], ["sweep", "--kernel-size", "3"]):
        result = cli_runner.invoke(cli, [*args, "--report", str(missing)])
        assert result.exit_code == 2 and "cannot write HTML report" in result.stderr, result.output
        assert "Outputs" not in result.output and "cases as expected" not in result.output
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jinja2" else real(name, *a))
    result = cli_runner.invoke(cli, [*FAILING, "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 3 and "pip install -e '.[report]'" in result.stderr
    assert not (tmp_path / "r.html").exists()


# --- in a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    from chromium import INSTALL, find_chromium

    path = find_chromium()
    if path is None:
        pytest.skip(f"headless Chromium is not installed here, so the page cannot be rendered: {INSTALL}")
    return path


def test_the_page_renders_in_headless_chromium_without_a_single_request(cli_runner, tmp_path, chromium):
    from PIL import Image

    from chromium import visit

    _, page = write_report(cli_runner, FAILING, tmp_path / "r.html")
    seen = visit(tmp_path / "r.html", {
        "images": "[...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])",
        "verdict": "document.getElementById('verdict').textContent",
        "first": "document.body.firstElementChild.id",
        "width": "document.documentElement.scrollWidth",
    }, chromium=chromium)
    # The page itself, then only its embedded data: URIs; nothing failed, nothing went to a network.
    assert seen.requests[0] == (tmp_path / "r.html").as_uri()
    assert all(url.startswith("data:image/svg+xml") for url in seen.requests[1:]), seen.requests
    assert seen.failed == []
    assert seen.values["first"] == "verdict" and seen.values["verdict"].startswith("mismatch: ")
    images = seen.values["images"]
    assert len(images) == 4 and all(done and w > 300 and h > 200 for done, w, h in images)
    assert seen.values["width"] <= 1200  # no table forces a horizontal scroll at a laptop's width
    shot = np.asarray(Image.open(io.BytesIO(seen.screenshot)).convert("RGB")).astype(int)
    assert shot.shape[0] > 2000 and 1100 < shot.shape[1] <= 1200  # the width less a scroll bar
    ink = (shot.sum(axis=-1) < 600).mean()  # not white
    red = ((shot[..., 0] > 150) & (shot[..., 1] < 110) & (shot[..., 2] < 110)).mean()
    assert ink > 0.05 and red > 0.01, (ink, red)  # text, tables and the red map of a mismatch were painted
    assert len(np.unique(shot.reshape(-1, 3)[::97], axis=0)) > 200


def test_the_browser_check_would_see_a_fetch(tmp_path, chromium):
    from chromium import visit

    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><p>x</p><img src="http://convdiff.invalid/pixel.png">')
    seen = visit(page, chromium=chromium)
    assert "http://convdiff.invalid/pixel.png" in seen.requests and seen.failed


def test_junit_of_run_names_every_case(cli_runner, tmp_path):
    junit = tmp_path / "run.xml"
    port_check = Path(__file__).resolve().parents[2] / "examples" / "port-check.toml"
    result = cli_runner.invoke(cli, ["run", str(port_check), "--junit", str(junit)], catch_exceptions=False)
    assert result.exit_code == 0
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "2" and root.get("failures") == "0"
    names = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert names == [("convdiff.run.port-check", "nn-vs-keras"), ("convdiff.run.port-check", "reference-vs-keras")]
