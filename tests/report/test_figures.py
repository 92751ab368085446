"""The figures: each has a title, labelled axes and a colour scale or legend, a pass and a mismatch
look different, the format follows the file's extension, and reruns are byte-identical."""

import io
import re

import numpy as np
import pytest

from convdiff.analysis import figures_data as fd
from convdiff.compare import Rule, Tolerance
from convdiff.errors import BackendUnavailableError, BadInputError
from convdiff.pipeline import SideConfig
from convdiff.report import figures
from convdiff.spec.convspec import ConvSpec, parse_padding
from convdiff.suites.propagate import LayerStats, Propagation, Series
from helpers import run_case

RNG = np.random.default_rng(11)
REF = RNG.random((1, 24, 30, 3))
RULE = Rule.elementwise(Tolerance(1e-6, 0.0))
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<?xml", "pdf": b"%PDF"}


def failing_output():
    cand = REF + 1e-7
    cand[0, -1] += 1.0
    return cand


def propagation():
    def series(name, role, growth):
        layers = tuple(LayerStats(i, growth ** i, growth ** i * 3, 0.1, "exploding" if growth ** i > 1e3 else "")
                       for i in range(1, 16))
        return Series(name, role, growth, growth, layers)

    return Propagation(15, 5, 32, (1, 32, 32, 32), 42, 1.0, 800,
                       (series("truncated_normal(stddev=0.1)", "candidate", 1.76), series("glorot_uniform", "reference",
                                                                                          0.7),
                        series("he_normal", "reference", 1.0)))


def every_figure():
    cand = failing_output()
    return {
        "map": fd.difference_map(REF, cand, RULE, border=(0, 1, 0, 0)),
        "scatter": fd.error_scatter(REF, cand, RULE),
        "histogram": fd.ratio_histogram(REF, cand, RULE),
        "kernels": fd.kernel_mosaic(RNG.random((3, 3, 2, 4)), RNG.random((3, 3, 2, 4))),
        "propagation": propagation(),
    }


def drawn(data):
    from matplotlib.figure import Figure

    figure = Figure(figsize=figures.size(data), layout="constrained")
    figures.draw(data, figure)
    figure.canvas.draw()  # titles and layout as they are saved
    return figure


@pytest.mark.parametrize("kind", ["map", "scatter", "histogram", "kernels", "propagation"])
def test_every_figure_has_a_title_labelled_axes_and_a_scale(kind):
    figure = drawn(every_figure()[kind])
    plots = [ax for ax in figure.axes if not hasattr(ax, "_colorbar")]
    bars = [ax for ax in figure.axes if hasattr(ax, "_colorbar")]
    assert plots
    for ax in plots:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), (kind, ax.get_title())
    if kind in ("map", "kernels"):
        assert bars and all(ax.get_ylabel() or ax.get_xlabel() for ax in bars)  # the colour bar says what it is
    else:
        assert figure.legends or any(ax.get_legend() is not None for ax in plots)
    if kind == "map":
        assert "divided by atol + rtol * |reference|" in figure.get_suptitle()
        (bar,) = bars
        assert "1 = limit" in [t.get_text() for t in bar.get_yticklabels()]


def pixels(png):
    import matplotlib.image

    return (matplotlib.image.imread(io.BytesIO(png))[..., :3] * 255).astype(int)


def test_a_pass_and_a_mismatch_look_different():
    passing = pixels(figures.render(fd.difference_map(REF, REF + 1e-7, RULE), "png"))
    failing = pixels(figures.render(fd.difference_map(REF, REF + 1e-5, RULE), "png"))

    def red(image):
        r, g, b = image[..., 0], image[..., 1], image[..., 2]
        return int(((r > 150) & (g < 110) & (b < 110)).sum())

    def blue(image):
        r, g, b = image[..., 0], image[..., 1], image[..., 2]
        return int(((b > 120) & (r < 100)).sum())

    # Both carry the same colour bar; the plane itself is blue for the pass (0.1 of the limit) and red
    # for the mismatch (10 times it).
    assert blue(passing) > blue(failing) + 20_000
    assert red(failing) > red(passing) + 20_000


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_formats_and_reruns_are_byte_identical(fmt):
    for data in every_figure().values():
        first, second = figures.render(data, fmt), figures.render(data, fmt)
        assert first.startswith(MAGIC[fmt])
        assert first == second
    svg = figures.render(every_figure()["map"], "svg")
    assert b"<dc:date>" not in svg
    # Only references inside the file (#ids) and embedded images (data:), nothing to fetch.
    assert {m.split(b":")[0] if b":" in m else m[:1] for m in re.findall(rb'href="([^"]*)"', svg)} <= {b"#", b"data"}


@pytest.mark.parametrize(("name", "fmt"), [("a.png", "png"), ("b.SVG", "svg"), ("c.pdf", "pdf")])
def test_the_format_follows_the_extension(name, fmt):
    assert figures.figure_format(name) == fmt


@pytest.mark.parametrize("name", ["h.jpg", "h.jpeg", "h", "h.png.txt"])
def test_other_extensions_are_refused(name):
    with pytest.raises(BadInputError, match="the format follows the file's extension"):
        figures.figure_format(name, "heatmap")


def test_without_matplotlib_a_figure_is_exit_3_with_the_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(BackendUnavailableError, match=r"pip install -e '\.\[report\]'") as info:
        figures.render(every_figure()["histogram"])
    assert info.value.exit_code == 3


def test_the_users_matplotlibrc_does_not_change_a_figure():
    import matplotlib

    data = every_figure()["scatter"]
    before = figures.render(data, "svg")
    with matplotlib.rc_context({"lines.linewidth": 7.0, "font.size": 20, "axes.facecolor": "#ff00ff"}):
        assert figures.render(data, "svg") == before


def test_a_case_has_all_four_figures_and_an_identical_one_only_its_map():
    spec = ConvSpec(input_shape=(1, 12, 12, 2), filters=3, kernel_size=(3, 3), strides=(2, 2),
                    padding=parse_padding("same"))
    caffe = ConvSpec(input_shape=(1, 12, 12, 2), filters=3, kernel_size=(3, 3), strides=(2, 2),
                     padding=parse_padding("1"))
    mismatch = figures.case_figures(run_case("pads", SideConfig("caffe", caffe), SideConfig("numpy", spec)))
    assert len(mismatch.present()) == 4
    assert mismatch.difference.mismatched > 0 and mismatch.scatter.failing.any()
    assert mismatch.scatter.magnitude_label.startswith("|x| (*) |w|")  # the bound rule decides
    same = figures.case_figures(run_case("same", SideConfig("numpy", spec), SideConfig("numpy", spec)))
    assert same.scatter is None and same.histogram is None and same.difference.max_ratio == 0
    assert same.kernels.identical
