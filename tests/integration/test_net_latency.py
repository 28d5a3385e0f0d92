"""Latency while idle: a UDP echo request that reaches a halted guest ends the halt through the
NIC's wake-up interrupt, not at the next timer tick.

A shorter run of bench/net-latency (its measurement code, loaded from there) against two guests:
apps/echo on q35, whose NIC wakes the halted loop by MSI-X, and the control, the same on microvm
with the NIC's MSI-X vectors taken away and no INTx routed ("timer only": the loop polls the NIC
on its timer). Between echoes the guest halts (it spins only 10 us), so every echo's round trip
contains the wake-up. The assertion is a ratio with generous slack: measured on this host ~50 us
against ~1000 us (20x); it asks for 3x.

What it does not assert: the issue's "spaced 20 ms apart within 1.5x of back to back". On this
host that is about 7x with the interrupt and about 11x with a guest that never halts at all (its
wait loop spinning): the extra time of a spaced echo is the host waking QEMU's threads after
20 ms asleep, not the guest. bench/net-latency prints both figures.
"""
import importlib.machinery
import importlib.util
import os

import pytest

from ringlet import build_app, root


def load_bench():
    path = os.path.join(root(), "bench", "net-latency")
    loader = importlib.machinery.SourceFileLoader("net_latency", path)
    spec = importlib.util.spec_from_loader("net_latency", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module", autouse=True)
def built():
    build_app("echo")


def test_wakeup_interrupt_beats_the_timer():
    bench = load_bench()
    irq = bench.measure(n=60, spacing_ms=20, timer_only=False)
    timer = bench.measure(n=60, spacing_ms=20, timer_only=True)
    print("interrupt:", irq)
    print("timer only:", timer)
    # Every echo was answered (a lost one would be a wake-up never taken).
    assert irq["lost"] == 0 and timer["lost"] == 0, (irq, timer)
    assert irq["b2b_median_us"] * 3 <= timer["b2b_median_us"], (irq, timer)
