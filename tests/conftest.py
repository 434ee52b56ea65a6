"""Backend selection by one switch.

Every test that takes the `device` fixture runs once per device. The devices are those
named in SMOLGRAD_TEST_DEVICES (comma-separated: cpu,mlx,cuda) or, when it is unset, every
device whose library is installed (CuPy only with a GPU). A device that is asked for but
unavailable is skipped with the reason, never failed silently.
"""

from __future__ import annotations

import os

import pytest

import smolgrad as sg


def _devices() -> list:
    named = os.environ.get("SMOLGRAD_TEST_DEVICES")
    if named:
        return [d.strip() for d in named.split(",") if d.strip()]
    return [d for d in ("cpu", "mlx", "cuda") if sg.is_available(d)]


DEVICES = _devices()


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    name = request.param
    if not sg.is_available(name):
        pytest.skip(f"device '{name}' is not available here")
    return name


@pytest.fixture(autouse=True)
def _seed():
    sg.manual_seed(0)
    yield
