#!/usr/bin/env python3
"""CPython's side of `cargo xtask bench`: the same workloads on
`selectors.DefaultSelector`, driven by the Rust bench over stdin/stdout.

Standard library only. One command per line, one answer per line:

    run WORKLOAD N TARGET_NS CLOCK -> nanoseconds per operation (or "na");
                              CLOCK is "cpu" (thread CPU time) or "wall"
    release                   ->  "ok", after closing the cached descriptors
    allocs                    ->  objects each select() returns that stay alive
    mem N                     ->  traced heap bytes per registration (data=None)
    quit

Each `run` builds a fresh selector over descriptors cached per (workload, n),
warms up and calibrates exactly as the Rust side does, then times one batch.
"""

import gc
import os
import resource
import selectors
import socket
import sys
import time
import tracemalloc

EVENT_READ = selectors.EVENT_READ
CHAIN_ACTIVE = 100


class Fixture:
    """watched[k] is registered with data k; writing to peer[k] makes it
    readable (as in the Rust bench's fixture.rs)."""

    def __init__(self, one_way, two_way):
        self.socks = []
        self.watched = []
        self.peer = []
        for _ in range(one_way):
            a, b = socket.socketpair()
            self._keep(a, b)
            self.watched.append(b.fileno())
            self.peer.append(a.fileno())
        for _ in range((two_way + 1) // 2):
            a, b = socket.socketpair()
            self._keep(a, b)
            self.watched += [a.fileno(), b.fileno()]
            self.peer += [b.fileno(), a.fileno()]

    def _keep(self, a, b):
        a.setblocking(False)
        b.setblocking(False)
        self.socks += [a, b]

    def drain(self):
        for fd in self.watched:
            try:
                while os.read(fd, 64):
                    pass
            except BlockingIOError:
                pass

    def close(self):
        for s in self.socks:
            s.close()


def fixture_for(workload, n):
    if workload == "pingpong":
        return Fixture(1, 0)
    if workload == "idle":
        return Fixture(1, n)
    fx = Fixture(0, n)
    if workload == "many_ready":
        for fd in fx.peer:
            os.write(fd, b"e")
    return fx


clock = time.thread_time_ns


def measure(target_ns, run):
    """Batches doubling until one takes target/8 (warm-up and calibration),
    then one batch sized to the target; run(iters) returns ops done."""
    iters = 1
    while True:
        start = clock()
        ops = run(iters)
        elapsed = clock() - start
        if elapsed >= target_ns // 8:
            break
        iters = max(ops, iters) * 2
    per_op = elapsed / max(ops, 1)
    iters = max(int(target_ns / per_op), 1)
    start = clock()
    ops = run(iters)
    return (clock() - start) / max(ops, 1)


def register_all(fx):
    sel = selectors.DefaultSelector()
    for k, fd in enumerate(fx.watched):
        sel.register(fd, EVENT_READ, k)
    return sel


def round_trips(fx, target_ns):
    sel = register_all(fx)
    writer = fx.peer[0]
    read, write, select = os.read, os.write, sel.select

    def run(iters):
        for _ in range(iters):
            write(writer, b"e")
            for key, _mask in select():
                read(key.fd, 64)
        return iters

    try:
        return measure(target_ns, run)
    finally:
        sel.close()


def chain(fx, target_ns):
    n = len(fx.watched)
    nxt = [fx.peer[(k + 1) % n] for k in range(n)]
    sel = register_all(fx)
    active = min(CHAIN_ACTIVE, n)
    space = n // active
    for i in range(active):
        os.write(fx.peer[i * space], b"e")
    read, write, select = os.read, os.write, sel.select

    def run(iters):
        delivered = 0
        while delivered < iters:
            for key, _mask in select():
                # One byte per callback, as libevent's read_cb.
                data = read(key.fd, 1)
                if data:
                    write(nxt[key.data], data)
                    delivered += 1
        return delivered

    try:
        return measure(target_ns, run)
    finally:
        sel.close()
        fx.drain()


def many_ready(fx, target_ns):
    sel = register_all(fx)
    select = sel.select

    def run(iters):
        delivered = 0
        total = 0
        while delivered < iters:
            for key, mask in select():
                total += key.data + mask
                delivered += 1
        return delivered

    try:
        return measure(target_ns, run)
    finally:
        sel.close()


WORKLOADS = {
    "pingpong": round_trips,
    "idle": round_trips,
    "chain": chain,
    "many_ready": many_ready,
}


def objects_per_select():
    """Blocks still allocated after each select(), its results kept alive:
    the list and one tuple per ready key (what it returns)."""
    fx = Fixture(1, 0)
    sel = register_all(fx)
    writer, reader = fx.peer[0], fx.watched[0]
    rounds = 1000
    keep = [None] * rounds
    for _ in range(100):
        os.write(writer, b"e")
        sel.select()
        os.read(reader, 64)
    gc.disable()
    before = sys.getallocatedblocks()
    for i in range(rounds):
        os.write(writer, b"e")
        keep[i] = sel.select()
        os.read(reader, 64)
    after = sys.getallocatedblocks()
    gc.enable()
    sel.close()
    fx.close()
    return (after - before) / rounds


def bytes_per_registration(n):
    fx = Fixture(0, n)
    sel = selectors.DefaultSelector()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for fd in fx.watched:
        sel.register(fd, EVENT_READ)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    sel.close()
    fx.close()
    return (after - before) / n


def main():
    global clock
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cached = None  # ((workload, n), Fixture)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] in ("release", "allocs", "mem") and cached is not None:
            cached[1].close()
            cached = None
        if words[0] == "release":
            answer = "ok"
        elif words[0] == "run":
            workload, n, target_ns = words[1], int(words[2]), int(words[3])
            clock = time.thread_time_ns if words[4] == "cpu" else time.perf_counter_ns
            bench = WORKLOADS.get(workload)
            if bench is None:
                answer = "na"
            else:
                if cached is None or cached[0] != (workload, n):
                    if cached is not None:
                        cached[1].close()
                    cached = ((workload, n), fixture_for(workload, n))
                answer = repr(bench(cached[1], target_ns))
        elif words[0] == "allocs":
            answer = repr(objects_per_select())
        elif words[0] == "mem":
            answer = repr(bytes_per_registration(int(words[1])))
        else:
            answer = "error unknown command " + words[0]
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
