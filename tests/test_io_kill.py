"""Saves killed at random moments (issue 11): the file at the path is always a complete
checkpoint, old or new; SIGTERM leaves no temporary file; kill -9 leaves one that the next
save removes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import smolgrad as sg
from smolgrad.io import load, save

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

# Once told a generation number on stdin, saves generation after generation of an 8 MB
# checkpoint to argv[1], forever.
SAVE_FOREVER = """
import sys
import smolgrad as sg
print("ready", flush=True)
path, generation = sys.argv[1], int(sys.stdin.readline())
while True:
    generation += 1
    weights = {f"w{i}": sg.full((256, 1024), float(generation)) for i in range(8)}
    sg.save({"generation": generation, "weights": weights}, path)
"""

# Sends itself SIGTERM in the middle of writing the file (after the header), once.
TERM_MID_WRITE = """
import os, signal, sys
import smolgrad as sg
import smolgrad.io as sgio
real_write = sgio._write
def write_then_term(stream, header, buffers):
    stream.write(header)
    os.kill(os.getpid(), signal.SIGTERM)
    real_write(stream, b"", buffers)
sgio._write = write_then_term
if sys.argv[2] == "own-handler":  # the program's own handler must still be the one called
    signal.signal(signal.SIGTERM, lambda signum, frame: print("handled", flush=True))
sg.save({"generation": 2, "w": sg.ones(1000)}, sys.argv[1])
print("finished", flush=True)
"""


def _child(script: str, *args: str) -> subprocess.Popen:
    """A Python process running `script` with this smolgrad, on the CPU."""
    env = dict(os.environ, SMOLGRAD_DEVICE="cpu")
    root = os.path.dirname(os.path.dirname(os.path.abspath(sg.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _others(folder, path) -> list:
    return sorted(name for name in os.listdir(folder) if name != path.name)


def _generation(back: dict) -> int:
    """The generation of a loaded checkpoint, which every tensor must hold."""
    generation = back["generation"]
    for name, weight in back["weights"].items():
        assert np.all(weight.numpy() == generation), (name, generation)
    return generation


def _wait_for_a_temp_file(folder, path, child) -> None:
    """Return once the child is writing a temporary file (it is mid-save)."""
    deadline = time.monotonic() + 30
    while not _others(folder, path):
        assert child.poll() is None and time.monotonic() < deadline, "no save started"
        time.sleep(0.0005)


@pytest.mark.slow
def test_random_kills_leave_a_complete_checkpoint_and_no_lasting_temp_file(tmp_path):
    """24 children save over one checkpoint and are killed (SIGKILL or SIGTERM), half at a
    random moment, half once their temporary file exists (surely mid-write). After each
    kill the file loads with its checksums verified, and the next save leaves no
    temporary file behind."""
    path = tmp_path / "ckpt.safetensors"
    save({"generation": 0, "weights": {"w0": sg.zeros(4)}}, path)
    rng = random.Random(11)
    last, temps_after_kill9, kills = 0, 0, 24
    upcoming = _child(SAVE_FOREVER, str(path))
    try:
        for attempt in range(kills):
            how = signal.SIGKILL if attempt % 2 == 0 else signal.SIGTERM
            child, upcoming = upcoming, _child(SAVE_FOREVER, str(path))  # it starts up now
            assert child.stdout.readline() == b"ready\n", child.communicate()[1].decode()
            child.stdin.write(b"%d\n" % last)
            child.stdin.flush()
            if attempt % 4 < 2:
                time.sleep(rng.uniform(0.0, 0.25))
            else:
                _wait_for_a_temp_file(tmp_path, path, child)
            child.send_signal(how)
            _, err = child.communicate(timeout=60)
            assert child.returncode == -how, err.decode()  # SIGTERM still ends it by the signal
            if how == signal.SIGTERM:
                assert _others(tmp_path, path) == [], "SIGTERM left a temporary file"
            else:
                temps_after_kill9 += bool(_others(tmp_path, path))
            back = load(path)  # checksums verified: complete, the old file or a newer one
            generation = _generation(back)
            assert generation >= last
            last = generation
            save(back, path)  # the next save...
            assert _others(tmp_path, path) == [], "a temporary file outlived the next save"
    finally:
        upcoming.kill()
        upcoming.communicate()
    # Some kill -9 landed mid-write and the saves went on between kills; otherwise this
    # test would prove nothing.
    assert temps_after_kill9 >= 2 and last >= kills // 4, (temps_after_kill9, last)


@pytest.mark.parametrize("handler", ["default", "own-handler"])
def test_sigterm_mid_write(tmp_path, handler):
    """Default SIGTERM mid-write: the temporary file is deleted, the old checkpoint stays,
    and the process still dies of SIGTERM. A program's own SIGTERM handler is called
    instead and the save completes."""
    path = tmp_path / "ckpt.safetensors"
    save({"generation": 1, "w": sg.zeros(1000)}, path)
    child = _child(TERM_MID_WRITE, str(path), handler)
    out, err = child.communicate(timeout=60)
    assert _others(tmp_path, path) == []
    if handler == "default":
        assert child.returncode == -signal.SIGTERM, err.decode()
        assert out == b"" and load(path)["generation"] == 1
    else:
        assert child.returncode == 0, err.decode()
        assert out == b"handled\nfinished\n" and load(path)["generation"] == 2
