"""Startup stays fast and quiet: --help imports no framework, TF's start-up noise never reaches users."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv", [["--help"], ["compare", "--help"], ["run", "--help"], ["sweep", "--help"], ["list"],
                                  ["--version"], ["propagate", "--help"], ["defaults", "--help"]])
def test_no_tensorflow_import(argv):
    code = (
        "import sys\n"
        "from convdiff.cli import cli\n"
        f"try:\n    cli({argv!r}, prog_name='convdiff')\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "bad = [m for m in ('tensorflow', 'keras', 'torch', 'tf_keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_tensorflow_noise_is_silenced_but_output_is_kept():
    proc = subprocess.run([sys.executable, "-m", "convdiff", "compare", "--init", "ones", "--shape", "1,8,8,3",
                           "--format", "json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    assert '"verdict"' in proc.stdout


def test_real_errors_on_stderr_are_not_filtered():
    from convdiff.frameworks import is_noise

    assert is_noise("I0000 00:00:1795291856.736677    2110 port.cc:153] oneDNN custom operations are on.")
    assert not is_noise("E0000 00:00:17 2110 conv_ops.cc:99] Conv2D failed: out of memory")
    assert not is_noise("Traceback (most recent call last):")
