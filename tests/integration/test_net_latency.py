"""Latency while idle: a UDP echo request that reaches a halted guest is not delayed by the halt.

A shorter run of bench/net-latency (its measurement code, loaded from there) against three
guests running apps/echo, booted together and measured in turns (the others stopped meanwhile,
so that this host's drifting load reaches them alike):
- normal: q35; between echoes the wait loop halts, and the NIC's MSI-X interrupt ends the halt;
- awake: the same with the kernel option idle=poll, a loop that never halts: the control;
- timer-only: microvm with the NIC's MSI-X vectors taken away and no INTx routed, so the halted
  loop looks at the NIC only every 1 ms (kernel/net/net.c's NET_POLL_NS).
Each gets 60 echoes back to back and 60 spaced 20 ms apart (the guest halts before each).

What it asserts: no echo lost; the normal guest's spaced median within 2.5x of the awake
guest's (the goal is 1.5x; measured 1.5-2.0x); the timer-only guest's back-to-back median at
least 3x the normal guest's (measured 7-20x). The awake guest is the noisy one: its vCPU takes a
host core the whole time, beside QEMU's main loop and the peer, and its spaced median has ranged
310-1290 us, so the timer-only guest's spaced median (790-900 us) is printed, not compared.

Why against an awake guest and not the issue's "spaced within 1.5x of back to back": on this
host (itself a VM) that ratio is the host's. The awake guest, which never halts, is as far from
it as the normal one (4-6x: back to back ~55-90 us, spaced ~250-350 us): a spaced echo waits for
the host to wake QEMU's main loop thread and the Python peer after 20 ms asleep, whatever the
guest does. bench/net-latency prints both figures.
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


def test_sleeping_guest_answers_as_fast_as_an_awake_one():
    bench = load_bench()
    r = bench.compare(["normal", "awake", "timer-only"], n=60, spacing_ms=20)
    normal, awake, timer = r["normal"], r["awake"], r["timer-only"]
    for m in r.values():
        print(m)
    # Every echo was answered (a lost one would be a wake-up never taken).
    assert all(m["lost"] == 0 for m in r.values()), r
    # The halt costs little: goal 1.5x. Measured 1.5-2.0x in turns (2026-12): what remains is
    # mostly the host waking QEMU's vCPU thread after 20 ms asleep. 2.5x leaves room for the
    # awake control's noise (see the top).
    assert normal["spaced_median_us"] <= 2.5 * awake["spaced_median_us"], r
    # The interrupt path matters: back to back, the next request comes while the guest has
    # just halted; the interrupt answers it at once, the timer-only loop at its next 1 ms look
    # (measured ~60-120 us against ~1000 us).
    assert timer["b2b_median_us"] >= 3 * normal["b2b_median_us"], r
