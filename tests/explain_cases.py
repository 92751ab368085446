"""Recorded outputs of known semantics, made by the real backends through `compare`'s own path (the
pipeline), shared by tests/analysis/test_explain.py and tests/cli/test_explain.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RNG = np.random.default_rng(2026)
# An even input (TF SAME and a symmetric pad differ with stride 2), C_in != C_out (I and O cannot swap),
# a kernel of no symmetry (correlation, true convolution and H/W transposes all differ).
X = RNG.random((1, 12, 12, 4)).astype(np.float32)
KERNEL = RNG.uniform(-0.5, 0.5, (3, 3, 4, 6)).astype(np.float32)  # HWIO
BIAS = RNG.uniform(0.2, 0.6, 6).astype(np.float32)


def write_files(folder: Path) -> dict[str, str]:
    """The arrays as a user holds them: the input NHWC and NCHW, the kernel in several layouts (with its bias)."""
    files = {
        "x": X, "x_nchw": X.transpose(0, 3, 1, 2),
        "w_hwio": KERNEL, "w_oihw": KERNEL.transpose(3, 2, 0, 1), "w_whio": KERNEL.transpose(1, 0, 2, 3),
        "w_grouped": KERNEL[:, :, :2, :],  # 2 groups of 2 input channels
        "bias": BIAS, "half_bias": BIAS / 2,
    }
    paths = {}
    for name, array in files.items():
        paths[name] = str(folder / f"{name}.npy")
        np.save(paths[name], array)
    paths["w_oihw_npz"] = str(folder / "w_oihw.npz")
    np.savez(paths["w_oihw_npz"], kernel=files["w_oihw"], bias=BIAS)
    return paths


# (name, backend, compare options with {file} names, what explain must find; the other fields are the defaults:
#  input NHWC, kernel HWIO, groups 1, correlation, stride 1, dilation 1, bias once)
CASES = [
    # PyTorch's symmetric pad 1 with stride 2 on an even input, kernel stored OIHW (with its bias), float32.
    ("torch pad 1 stride 2, OIHW", "torch",
     ["--input", "{x}", "--weights", "{w_oihw_npz}", "--weights-layout", "OIHW", "--strides", "2", "--padding", "1"],
     dict(weights_layout="OIHW", strides=(2, 2), padding="symmetric", pads=((1, 1), (1, 1)), arithmetic="float32")),
    # Pad 1 in float16 arithmetic, and the bias file given but not used; at stride 1 pad 1 is TF SAME too (the
    # name explain prefers).
    ("torch float16, bias missing", "torch",
     ["--input", "{x}", "--weights", "{w_hwio}", "--padding", "1", "--no-bias", "--dtype", "float16"],
     dict(padding="same", also=("symmetric",), pads=((1, 1), (1, 1)), bias="none", arithmetic="float16",
          bias_file="{bias}")),
    # TensorFlow SAME with stride 2: the odd pad at the end (0, 1).
    ("tf.nn SAME stride 2", "nn",
     ["--input", "{x}", "--weights", "{w_hwio}", "--bias", "{bias}", "--strides", "2", "--padding", "same"],
     dict(strides=(2, 2), padding="same", pads=((0, 1), (0, 1)), arithmetic="float32")),
    # A true convolution (MATLAB conv2 / scipy.signal.convolve), valid, in float64.
    ("scipy true convolution", "scipy",
     ["--input", "{x}", "--weights", "{w_hwio}", "--bias", "{bias}", "--padding", "valid",
      "--convention", "convolution", "--dtype", "float64"],
     dict(convention="convolution", padding="valid", pads=((0, 0), (0, 0)), arithmetic="float64")),
    # The input was NCHW (PyTorch's), the kernel H/W transposed (WHIO), Keras computing.
    ("keras, NCHW input, H/W transposed kernel", "keras",
     ["--input", "{x_nchw}", "--input-layout", "NCHW", "--weights", "{w_whio}", "--bias", "{bias}",
      "--weights-layout", "WHIO", "--padding", "valid"],
     dict(input_layout="NCHW", weights_layout="WHIO", padding="valid", pads=((0, 0), (0, 0)), arithmetic="float32")),
    # Two groups.
    ("keras 2 groups", "keras",
     ["--input", "{x}", "--weights", "{w_grouped}", "--bias", "{bias}", "--groups", "2", "--padding", "valid"],
     dict(groups=2, padding="valid", pads=((0, 0), (0, 0)), arithmetic="float32")),
    # The bias added twice: the file holds half of what the network added.
    ("bias doubled", "nn",
     ["--input", "{x}", "--weights", "{w_hwio}", "--bias", "{bias}", "--padding", "valid"],
     dict(padding="valid", pads=((0, 0), (0, 0)), bias="twice", arithmetic="float32", bias_file="{half_bias}")),
    # Dilation 2 (searched only when dilation 1 explains nothing), TF SAME.
    ("tf.nn dilation 2", "nn",
     ["--input", "{x}", "--weights", "{w_hwio}", "--bias", "{bias}", "--dilation", "2", "--padding", "same"],
     dict(dilation=(2, 2), padding="same", pads=((2, 2), (2, 2)), arithmetic="float32")),
    # TF32 (GPU tensor cores), emulated by the NumPy reference.
    ("numpy tf32", "numpy",
     ["--input", "{x}", "--weights", "{w_hwio}", "--bias", "{bias}", "--padding", "valid", "--dtype", "tf32"],
     dict(padding="valid", pads=((0, 0), (0, 0)), arithmetic="tf32")),
]

DEFAULTS = dict(input_layout="NHWC", weights_layout="HWIO", groups=1, convention="correlation", strides=(1, 1),
                dilation=(1, 1), bias="once")


def filled(args: list[str], paths: dict[str, str]) -> list[str]:
    return [a.format(**paths) for a in args]


def produce(backend: str, args: list[str]) -> np.ndarray:
    """The output `convdiff compare ARGS --candidate BACKEND` computes on its candidate side (channels-last)."""
    from convdiff.cli.compare import compare, make_case
    from convdiff.cli.options import case_options, spec_fields
    from convdiff.pipeline import execute

    ctx = compare.make_context("compare", [*args, "--reference", "numpy", "--candidate", backend])
    params = dict(ctx.params)
    case = make_case("numpy", backend, spec_fields(params), case_options(None, None, False, None, "probabilistic"))
    return np.asarray(execute(case).side("candidate").result.output)
