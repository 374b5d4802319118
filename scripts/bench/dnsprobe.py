"""Small DNS client pieces for the bench: build a query, read a response's
header and first A address, time one question at a time, and empty a
resolver's cache (ours over its control endpoint, Unbound over its
remote-control port). Standard library only.

The latency probes send one question, wait for its answer, and only then
send the next: they measure a round trip, not throughput (dnsperf does that).
"""

import http.client
import os
import socket
import struct
import time

TYPES = {
    "A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
    "AAAA": 28, "SRV": 33, "DS": 43, "ANY": 255,
}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def query(qid, name, qtype="A", rd=True):
    """A DNS query without EDNS, as dnsperf sends them."""
    flags = 0x0100 if rd else 0
    return struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0) + encode_name(name) + struct.pack(
        ">HH", TYPES[qtype], 1
    )


def skip_name(msg, pos):
    while True:
        n = msg[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += n + 1


class Response:
    """The parts of a response the bench checks."""

    def __init__(self, msg):
        (self.id, flags, qd, an, ns, ar) = struct.unpack(">HHHHHH", msg[:12])
        self.qr = bool(flags & 0x8000)
        self.aa = bool(flags & 0x0400)
        self.tc = bool(flags & 0x0200)
        self.rcode = RCODES.get(flags & 0xF, str(flags & 0xF))
        self.counts = (an, ns, ar)
        self.addresses = []
        pos = 12
        for _ in range(qd):
            pos = skip_name(msg, pos) + 4
        for _ in range(an):
            pos = skip_name(msg, pos)
            rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[pos : pos + 10])
            pos += 10
            if rtype == 1 and rdlen == 4:
                self.addresses.append(socket.inet_ntoa(msg[pos : pos + 4]))
            pos += rdlen


def ask(addr, name, qtype="A", rd=True, timeout=1.0):
    """One question over UDP; the Response, or None on timeout."""
    qid = int.from_bytes(os.urandom(2), "big")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect(addr)
        s.send(query(qid, name, qtype, rd))
        try:
            while True:
                msg = s.recv(65535)
                if len(msg) >= 12 and msg[:2] == struct.pack(">H", qid):
                    return Response(msg)
        except (socket.timeout, ConnectionRefusedError):
            return None


def wait_answer(addr, name, qtype="A", rd=True, deadline=10.0, want=None, every=0.002):
    """Ask until an answer comes (with address `want`, if given) or the
    deadline passes; returns (Response or None, seconds waited)."""
    start = time.perf_counter()
    while True:
        r = ask(addr, name, qtype, rd, timeout=every)
        if r is not None and (want is None or want in r.addresses):
            return r, time.perf_counter() - start
        if time.perf_counter() - start > deadline:
            return r, time.perf_counter() - start
        if r is not None:
            time.sleep(every)


def round_trips(addr, name, qtype, count, rd=True):
    """Microseconds for each of `count` questions asked one after another."""
    times = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        s.connect(addr)
        packets = [query(i & 0xFFFF, name, qtype, rd) for i in range(count)]
        for i, packet in enumerate(packets):
            t0 = time.perf_counter_ns()
            s.send(packet)
            while True:
                msg = s.recv(65535)
                if msg[:2] == packet[:2]:
                    break
            times.append((time.perf_counter_ns() - t0) / 1000.0)
    return times


def round_trips_lossy(addr, name, qtype, count, timeout=1.0, rd=True):
    """Like round_trips, but a question unanswered within `timeout` is
    counted lost instead of failing: (microseconds of each answer, lost)."""
    times, lost = [], 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect(addr)
        for i in range(count):
            packet = query((i * 40503) & 0xFFFF, name, qtype, rd)
            t0 = time.perf_counter_ns()
            s.send(packet)
            try:
                while True:
                    msg = s.recv(65535)
                    if msg[:2] == packet[:2]:
                        break
                times.append((time.perf_counter_ns() - t0) / 1000.0)
            except (socket.timeout, ConnectionRefusedError):
                lost += 1
    return times, lost


def flush_dnstrail(control):
    """Empty our resolver's cache: POST /flush on its control endpoint."""
    conn = http.client.HTTPConnection(control[0], control[1], timeout=5)
    try:
        conn.request("POST", "/flush")
        reply = conn.getresponse()
        reply.read()
        if reply.status != 200:
            raise RuntimeError(f"POST /flush answered {reply.status}")
    finally:
        conn.close()


def unbound_control(control, *command):
    """One unbound-control command over its plain-TCP control port
    (control-use-cert: no): the same line `unbound-control` sends."""
    with socket.create_connection(control, timeout=5) as s:
        s.sendall(b"UBCT1 " + " ".join(command).encode() + b"\n")
        chunks = []
        while True:
            data = s.recv(4096)
            if not data:
                break
            chunks.append(data)
    reply = b"".join(chunks).decode(errors="replace")
    if not reply.startswith("ok"):
        raise RuntimeError(f"unbound-control {' '.join(command)}: {reply.strip()}")
    return reply


def flush_unbound(control):
    """Empty Unbound's caches as `unbound-control flush_zone .`,
    `flush_infra all` and `flush_requestlist` do."""
    unbound_control(control, "flush_zone", ".")
    unbound_control(control, "flush_infra", "all")
    unbound_control(control, "flush_requestlist")


def cold_resolutions(addr, name, flush, count, want):
    """Microseconds of `count` first resolutions, the cache emptied by
    `flush()` before each (the flush is not timed)."""
    times = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3.0)
        s.connect(addr)
        for i in range(count):
            flush()
            packet = query((i * 7919) & 0xFFFF, name, "A", True)
            t0 = time.perf_counter_ns()
            s.send(packet)
            while True:
                msg = s.recv(65535)
                if msg[:2] == packet[:2]:
                    break
            elapsed = (time.perf_counter_ns() - t0) / 1000.0
            r = Response(msg)
            if want not in r.addresses:
                raise RuntimeError(f"cold resolution {i} of {name}: {r.rcode}, {r.addresses}")
            times.append(elapsed)
    return times
