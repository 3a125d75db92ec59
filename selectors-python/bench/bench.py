"""selectors_rs against CPython's selectors, in the same process and run.

Workloads, each on every kind of selector both modules have, ours and
CPython's interleaved round by round (the median of the rounds is shown):

- ready: one select(0) that returns 1,000 ready sockets (both ends of 500
  socket pairs, registered for EVENT_WRITE); goal: >= 3x faster;
- churn: register + modify (other events) + unregister of one socket;
  goal: >= 2x faster;
- blocks: the memory blocks one such select() allocates (the interpreter's
  free list of 2-tuples emptied first): ours, one tuple per ready socket
  and the list;
- echo: an asyncio echo server (asyncio.Protocol, in a process of its own)
  whose event loop uses CPython's DefaultSelector, ours, or is uvloop's
  (if uvloop is installed), under a load of 100 connections each with one
  64-byte message in flight (a plain selector loop in another process);
  round trips per second (and the median of the rounds' ratios), and the
  server's CPU time per round trip; goal: ours >= 1.0x CPython's.

Usage: python bench.py [--quick]
"""

import asyncio
import os
import platform
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import time

import selectors_rs

KINDS = [k for k in ("SelectSelector", "PollSelector", "EpollSelector", "KqueueSelector",
                     "DevpollSelector") if hasattr(selectors, k) and hasattr(selectors_rs, k)]
READY = 1000
MESSAGE = b"x" * 64
CONNECTIONS = 100


def ready_ns(cls, writers, calls):
    """Nanoseconds per select(0) returning every writer as ready, and the
    user and system CPU time of each, in nanoseconds too."""
    sel = cls()
    try:
        for w in writers:
            sel.register(w, selectors.EVENT_WRITE)
        assert len(sel.select(0)) == len(writers)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            sel.select(0)
        wall = (time.perf_counter_ns() - t0) / calls
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        user = (r1.ru_utime - r0.ru_utime) * 1e9 / calls
        system = (r1.ru_stime - r0.ru_stime) * 1e9 / calls
        return wall, user, system
    finally:
        sel.close()


def churn_ns(cls, fd, cycles):
    """Nanoseconds per register + modify + unregister of one descriptor."""
    sel = cls()
    try:
        read, write = selectors.EVENT_READ, selectors.EVENT_WRITE
        t0 = time.perf_counter_ns()
        for i in range(cycles):
            sel.register(fd, read, i)
            sel.modify(fd, write, i)
            sel.unregister(fd)
        return (time.perf_counter_ns() - t0) / cycles
    finally:
        sel.close()


def blocks(cls, writers):
    """Memory blocks one select(0) of every writer allocates."""
    import gc

    sel = cls()
    try:
        for w in writers:
            sel.register(w, selectors.EVENT_WRITE)
        sel.select(0)
        gc.disable()
        hold = [(i, -i) for i in range(5000)]
        before = sys.getallocatedblocks()
        ready = sel.select(0)
        allocated = sys.getallocatedblocks() - before
        gc.enable()
        del ready, hold
        return allocated
    finally:
        sel.close()


def interleaved(rounds, measure):
    """Median of `rounds` runs of measure(module) for CPython's and ours,
    alternated (so both see the same machine)."""
    runs = {selectors: [], selectors_rs: []}
    for _ in range(rounds):
        for module in (selectors, selectors_rs):
            runs[module].append(measure(module))
    return statistics.median(runs[selectors]), statistics.median(runs[selectors_rs])


# ------------------------------------------------------------------ echo

def serve(variant):
    """The echo server: prints its port, serves until killed."""
    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    if variant == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        module = selectors_rs if variant == "selectors_rs" else selectors
        loop = asyncio.SelectorEventLoop(module.DefaultSelector())
        assert type(loop._selector).__module__ == module.__name__
    server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", 0))
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


def load(port, connections, seconds):
    """The load: `connections` clients, each with one message in flight;
    prints the round trips completed in `seconds`."""
    sel = selectors_rs.DefaultSelector()
    pending = {}
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        pending[s] = len(MESSAGE)
        s.sendall(MESSAGE)
    trips = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in sel.select(1):
            s = key.fileobj
            pending[s] -= len(s.recv(65536))
            if pending[s] == 0:
                trips += 1
                pending[s] = len(MESSAGE)
                s.send(MESSAGE)
    print(trips, flush=True)


def cpu_seconds(pid):
    """The CPU time (user and system) process `pid` has used, from /proc;
    None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def echo_rate(variant, seconds):
    """Round trips per second of the echo server `variant`, and the
    server's CPU time per round trip in microseconds (None without
    /proc)."""
    server = subprocess.Popen([sys.executable, __file__, "--serve", variant],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        cpu0 = cpu_seconds(server.pid)
        client = subprocess.run(
            [sys.executable, __file__, "--load", str(port), str(CONNECTIONS), str(seconds)],
            stdout=subprocess.PIPE, text=True, check=True)
        cpu1 = cpu_seconds(server.pid)
        trips = int(client.stdout)
        cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / trips * 1e6
        return trips / seconds, cpu
    finally:
        server.kill()
        server.wait()


def main():
    quick = "--quick" in sys.argv
    rounds = 3 if quick else 7
    print(f"selectors_rs against CPython {platform.python_version()}'s selectors "
          f"({platform.system()}, {os.cpu_count()} CPUs), median of {rounds} rounds, "
          "interleaved\n")
    # Both ends of 500 pairs: 1,000 sockets, all writable, all below
    # FD_SETSIZE (which CPython's SelectSelector cannot exceed).
    pairs = [socket.socketpair() for _ in range(READY // 2)]
    writers = [s for pair in pairs for s in pair]
    rows = []
    cpu = []
    for kind in KINDS:
        runs = {selectors: [], selectors_rs: []}
        for _ in range(rounds):
            for module in (selectors, selectors_rs):
                runs[module].append(ready_ns(getattr(module, kind), writers, 50 if quick else 200))
        cpython, ours = (statistics.median(r[0] for r in runs[m]) for m in (selectors, selectors_rs))
        rows.append((f"select() -> {READY} ready", kind, cpython / 1e3, ours / 1e3, "us", 3.0))
        cpu.append((kind, *(statistics.median(r[i] for r in runs[m]) / 1e3
                            for m in (selectors, selectors_rs) for i in (1, 2))))
    fd = pairs[0][0].fileno()
    for kind in KINDS:
        cpython, ours = interleaved(
            rounds, lambda m: churn_ns(getattr(m, kind), fd, 5000 if quick else 20000))
        rows.append(("register+modify+unregister", kind, cpython / 1e3, ours / 1e3, "us", 2.0))
    print(f"{'workload':<28} {'class':<15} {'CPython':>10} {'selectors_rs':>13} "
          f"{'speed-up':>9}  goal")
    for workload, kind, cpython, ours, unit, goal in rows:
        ratio = cpython / ours
        verdict = "met" if ratio >= goal else "NOT MET"
        print(f"{workload:<28} {kind:<15} {cpython:>7.2f} {unit} {ours:>10.2f} {unit} "
              f"{ratio:>8.2f}x  >= {goal:.0f}x {verdict}")
    print(f"\nCPU time of one select() -> {READY} ready (the kernel's is the same work "
          "on both sides):")
    for kind, c_user, c_sys, o_user, o_sys in cpu:
        print(f"  {kind:<15} CPython: user {c_user:6.1f} us, system {c_sys:6.1f} us;  "
              f"selectors_rs: user {o_user:6.1f} us, system {o_sys:6.1f} us")
    print()
    for kind in KINDS:
        cls_c, cls_o = getattr(selectors, kind), getattr(selectors_rs, kind)
        print(f"memory blocks allocated by one select() of {READY} ready, {kind}: "
              f"CPython {blocks(cls_c, writers)}, selectors_rs {blocks(cls_o, writers)}")
    for a, b in pairs:
        a.close()
        b.close()

    print(f"\nasyncio echo server, {CONNECTIONS} connections x one {len(MESSAGE)}-byte "
          "message in flight, round trips/s:")
    variants = ["selectors", "selectors_rs"]
    try:
        import uvloop  # noqa: F401
        variants.append("uvloop")
    except ImportError:
        print("  (uvloop is not installed: `pip install uvloop` to compare with it)")
    seconds = 1 if quick else 3
    rates = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    for _ in range(3 if quick else 9):
        for variant in variants:
            rate, per_trip = echo_rate(variant, seconds)
            rates[variant].append(rate)
            cpu[variant].append(per_trip)
    median = {v: statistics.median(r) for v, r in rates.items()}
    names = {"selectors": "CPython's DefaultSelector", "selectors_rs": "selectors_rs.DefaultSelector",
             "uvloop": "uvloop"}
    # The median of each round's ratio: the variants of a round run back to
    # back, so each ratio compares runs under the same load of the machine.
    ratios = {v: statistics.median(a / b for a, b in zip(r, rates["selectors"]))
              for v, r in rates.items()}
    for variant in variants:
        line = f"  {names[variant]:<30} {median[variant]:>9,.0f}  {ratios[variant]:.2f}x CPython's"
        if None not in cpu[variant]:
            line += f"; server CPU {statistics.median(cpu[variant]):.1f} us per round trip"
        print(line)
    ratio = ratios["selectors_rs"]
    print(f"  goal: selectors_rs >= 1.0x CPython's: {'met' if ratio >= 1.0 else 'NOT MET'} "
          f"({ratio:.2f}x)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    elif sys.argv[1:2] == ["--load"]:
        load(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1:2] in (["--help"], ["-h"]):
        print(__doc__)
    else:
        main()
