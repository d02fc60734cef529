#!/usr/bin/env python3
"""Noisy-neighbour harness for swarmscope.

Starts the real collector with two tenant keys (A and B) and an admin key, then for
each attack class lets tenant A (or an unauthenticated caller) attack at full speed
while tenant B keeps sending its normal traffic, and measures what B sees (ack
latency, errors) and what the collector costs (peak RSS).

Stdlib only; gRPC is spoken with hand-built HTTP/2 frames (h2c, prior knowledge).
Everything talks to 127.0.0.1 only; every loop is bounded in time and count.

    python3 tests/neighbours/neighbours.py [--seconds 8] [--json out.json] [--no-assert]

See README.md beside this file.
"""
from __future__ import annotations

import argparse
import atexit
import datetime as dt
import gzip
import hashlib
import http.client
import json
import multiprocessing as mp
import os
import random
import resource
import secrets
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter

HOST = "127.0.0.1"
B_ADDR = "127.0.0.1"          # tenant B's agents (and the wrong-key flood: same address)
MONITOR_ADDR = "127.0.0.254"  # the /healthz probe, so a lockout of B's address does not hide liveness
CLIENT_TIMEOUT = 10.0

CLASSES = [
    "none", "gzip-bomb-auth", "gzip-bomb-noauth", "slow-body", "idle-conns",
    "h2-stalls", "search-flood", "vm-close-flood", "bad-numbers", "wrong-key",
]
# Each attack class comes from its own loopback address (an attacker on another VM),
# so the per-address auth lockout of one class does not leak into the next. The
# wrong-key flood deliberately comes from B's own address (tenants behind one NAT /
# one host): it runs last because the lockout lasts up to a minute.
ATTACKER_ADDR = {name: f"127.0.0.{10 + i}" for i, name in enumerate(CLASSES)}
ATTACKER_ADDR["wrong-key"] = B_ADDR

TARGET_P99_MS = 50.0
TARGET_RSS_MB = 300.0
# B's OTLP/gRPC probe sends 5 spans/s, so its p99 is nearly its maximum: a looser
# bound that still catches stalls without failing on one slow sample of a debug build.
TARGET_GRPC_P99_MS = 200.0

GRPC_TRACE_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GRPC_LOGS_PATH = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def now_iso(offset_s: float = 0.0) -> str:
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# --------------------------------------------------------------------------------------
# protobuf / gzip / HTTP/2 building blocks
# --------------------------------------------------------------------------------------

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field(num: int, payload: bytes) -> bytes:
    """Length-delimited field."""
    return varint((num << 3) | 2) + varint(len(payload)) + payload


def otlp_bomb(total_bytes: int) -> bytes:
    """ExportTraceServiceRequest (also a valid ExportLogsServiceRequest): one
    ResourceSpans, one ScopeSpans, and as many empty Span submessages (field 2,
    bytes 0x12 0x00) as fit in total_bytes."""
    n = max(1, (total_bytes - 16) // 2)
    spans = b"\x12\x00" * n
    scope_spans = spans                       # ScopeSpans { spans (2): [Span{}...] }
    resource_spans = pb_field(2, scope_spans)  # ResourceSpans { scope_spans (2) }
    return pb_field(1, resource_spans)         # Request { resource_spans (1) }


def json_bomb(total_bytes: int) -> bytes:
    n = max(1, (total_bytes - 2) // 3)
    return b"[" + b"{}," * (n - 1) + b"{}]"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def otlp_span(trace_id: bytes, span_id: bytes, name: str) -> bytes:
    """A valid OTLP ExportTraceServiceRequest with one span (for B's gRPC probe)."""
    t1 = time.time_ns()
    t0 = t1 - 5_000_000
    span = (pb_field(1, trace_id) + pb_field(2, span_id) + pb_field(5, name.encode())
            + varint((6 << 3) | 0) + varint(3)
            + varint((7 << 3) | 1) + struct.pack("<Q", t0)
            + varint((8 << 3) | 1) + struct.pack("<Q", t1))
    scope = pb_field(1, pb_field(1, b"neighbours")) + pb_field(2, span)
    resource = pb_field(1, pb_field(1, pb_field(1, b"service.name")
                                    + pb_field(2, pb_field(1, b"tenant-b-agent"))))
    return pb_field(1, resource + pb_field(2, scope))


def grpc_message(msg: bytes, compressed: bool) -> bytes:
    return (b"\x01" if compressed else b"\x00") + struct.pack(">I", len(msg)) + msg


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def h2_frame(ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid & 0x7FFFFFFF) + payload


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    maxp = (1 << prefix_bits) - 1
    if value < maxp:
        return bytes([first | value])
    out = bytearray([first | maxp])
    value -= maxp
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name: str, value: str) -> bytes:
    """Literal header field without indexing, new name, no Huffman."""
    n, v = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v


class H2Conn:
    """A minimal HTTP/2 client over cleartext TCP (prior knowledge), enough for gRPC."""

    def __init__(self, port: int, source_ip: str, timeout: float = CLIENT_TIMEOUT):
        self.sock = socket.create_connection((HOST, port), timeout=timeout, source_address=(source_ip, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.authority = f"{HOST}:{port}"
        self.next_sid = 1
        self.streams: dict[int, dict] = {}
        self.closed = False
        self.goaway = None
        self.buf = bytearray()
        self.lock = threading.Lock()
        settings = struct.pack(">HI", 2, 0) + struct.pack(">HI", 4, 1 << 24)  # no push, 16 MiB window
        self.sock.sendall(H2_PREFACE + h2_frame(SETTINGS, 0, 0, settings)
                          + h2_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", (1 << 30))))

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _send(self, data: bytes) -> None:
        with self.lock:
            self.sock.settimeout(CLIENT_TIMEOUT)
            self.sock.sendall(data)

    def open_stream(self, path: str, headers: list[tuple[str, str]], end_stream: bool = False) -> int:
        sid = self.next_sid
        self.next_sid += 2
        hdrs = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", self.authority),
                ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "neighbours/1")] + headers
        block = b"".join(hpack_literal(n, v) for n, v in hdrs)
        self.streams[sid] = {"done": False, "data": 0, "headers": 0, "rst": None, "t0": time.monotonic()}
        self._send(h2_frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, block))
        return sid

    def send_data(self, sid: int, data: bytes, end_stream: bool = True) -> None:
        out = bytearray()
        chunks = [data[i:i + 16384] for i in range(0, len(data), 16384)] or [b""]
        for i, c in enumerate(chunks):
            last = i == len(chunks) - 1
            out += h2_frame(DATA, END_STREAM if (last and end_stream) else 0, sid, c)
        self._send(bytes(out))

    def _read_frame(self, timeout: float):
        self.sock.settimeout(max(0.001, timeout))
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[0:3], "big"):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("h2 connection closed by peer")
            self.buf += chunk
        length = int.from_bytes(self.buf[0:3], "big")
        ftype, flags = self.buf[3], self.buf[4]
        sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
        payload = bytes(self.buf[9:9 + length])
        del self.buf[:9 + length]
        return ftype, flags, sid, payload

    def pump(self, timeout: float) -> bool:
        """Reads and handles one frame; False on timeout. Raises when the connection ends."""
        try:
            ftype, flags, sid, payload = self._read_frame(timeout)
        except (socket.timeout, TimeoutError):
            return False
        except (OSError, ConnectionError):
            self._all_done()
            raise
        st = self.streams.get(sid)
        if ftype == SETTINGS and not flags & ACK:
            self._send(h2_frame(SETTINGS, ACK, 0, b""))
        elif ftype == PING and not flags & ACK:
            self._send(h2_frame(PING, ACK, 0, payload))
        elif ftype == DATA:
            if payload:
                inc = struct.pack(">I", len(payload))
                self._send(h2_frame(WINDOW_UPDATE, 0, 0, inc) + h2_frame(WINDOW_UPDATE, 0, sid, inc))
            if st is not None:
                st["data"] += len(payload)
                if flags & END_STREAM:
                    st["done"] = True
        elif ftype in (HEADERS, CONTINUATION):
            if st is not None:
                st["headers"] += 1
                if flags & END_STREAM:
                    st["done"] = True
        elif ftype == RST_STREAM:
            if st is not None:
                st["rst"] = struct.unpack(">I", payload[:4])[0] if len(payload) >= 4 else -1
                st["done"] = True
        elif ftype == GOAWAY:
            last = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF if len(payload) >= 4 else 0
            code = struct.unpack(">I", payload[4:8])[0] if len(payload) >= 8 else -1
            self.goaway = code
            for s, v in self.streams.items():
                if s > last:
                    v["done"] = True
                    v["rst"] = v["rst"] if v["rst"] is not None else "goaway"
        return True

    def _all_done(self) -> None:
        self.closed = True
        for v in self.streams.values():
            if not v["done"]:
                v["done"] = True
                v["rst"] = v["rst"] if v["rst"] is not None else "closed"

    def wait(self, sid: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        st = self.streams[sid]
        while not st["done"]:
            left = deadline - time.monotonic()
            if left <= 0:
                st["timeout"] = True
                break
            self.pump(left)
        return self.streams.pop(sid)

    def unary(self, path: str, headers: list[tuple[str, str]], body: bytes, timeout: float) -> dict:
        sid = self.open_stream(path, headers)
        self.send_data(sid, body, end_stream=True)
        return self.wait(sid, timeout)


def grpc_outcome(st: dict) -> str:
    if st.get("timeout"):
        return "timeout"
    if st["rst"] is not None:
        return f"rst:{st['rst']}"
    # A successful unary reply has response headers, a DATA frame with the message and
    # trailers; a failure is trailers-only (one HEADERS frame with END_STREAM, no DATA).
    return "ok" if st["data"] > 0 else "grpc-error"


# --------------------------------------------------------------------------------------
# HTTP/1.1 helpers
# --------------------------------------------------------------------------------------

def http_once(port: int, method: str, path: str, body: bytes | None, headers: dict,
              source_ip: str | None = None, timeout: float = CLIENT_TIMEOUT):
    """One request on a fresh connection: (status or error kind, body bytes)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout,
                                      source_address=(source_ip, 0) if source_ip else None)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    except (socket.timeout, TimeoutError):
        return "timeout", b""
    except (OSError, http.client.HTTPException) as e:
        return f"error:{type(e).__name__}", b""
    finally:
        conn.close()


class KeepAlive:
    """A keep-alive HTTP/1.1 connection that reconnects after any failure."""

    def __init__(self, port: int, source_ip: str, timeout: float = CLIENT_TIMEOUT):
        self.port, self.source_ip, self.timeout = port, source_ip, timeout
        self.conn = None

    def request(self, method: str, path: str, body: bytes | None, headers: dict):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout,
                                                       source_address=(self.source_ip, 0))
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.will_close:
                    self.close()
                return r.status, data
            except (socket.timeout, TimeoutError):
                self.close()
                return "timeout", b""
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if attempt == 1 or isinstance(e, ConnectionRefusedError):
                    return f"error:{type(e).__name__}", b""
        return "error:retry", b""

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None


# --------------------------------------------------------------------------------------
# The collector
# --------------------------------------------------------------------------------------

def sha256_hex(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


class Collector:
    def __init__(self, binary: str, tmp: str):
        self.binary = binary
        self.tmp = tmp
        self.keys = {
            "A": "ssk_" + secrets.token_hex(32),
            "B": "ssk_" + secrets.token_hex(32),
            "admin": "ssk_" + secrets.token_hex(32),
        }
        self.config_path = os.path.join(tmp, "swarmscope.toml")
        data_dir = os.path.join(tmp, "data")
        text = (f'data_dir = "{data_dir}"\n'
                f'otlp_grpc_listen = "127.0.0.1:0"\n\n')
        for tenant in ("A", "B"):
            text += (f'[[keys]]\nhash = "sha256:{sha256_hex(self.keys[tenant])}"\n'
                     f'tenant = "{tenant}"\nroles = ["ingest", "read"]\nname = "tenant {tenant}"\n\n')
        text += f'[[keys]]\nhash = "sha256:{sha256_hex(self.keys["admin"])}"\nroles = ["admin"]\nname = "operators"\n'
        with open(self.config_path, "w") as f:
            f.write(text)
        self.proc: subprocess.Popen | None = None
        self.port = self.grpc_port = 0
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        stderr = open(os.path.join(self.tmp, "stderr.log"), "ab")
        env = dict(os.environ, SWARMSCOPE_LOG="warn")
        for k in ("SWARMSCOPE_CONFIG", "SWARMSCOPE_API_KEY", "SWARMSCOPE_URL", "SWARMSCOPE_LISTEN",
                  "SWARMSCOPE_DATA_DIR"):
            env.pop(k, None)
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--config", self.config_path, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=env, cwd=self.tmp)
        stderr.close()
        first: list[str] = []
        got = threading.Event()

        def drain(out):
            for i, line in enumerate(iter(out.readline, b"")):
                if i == 0:
                    first.append(line.decode(errors="replace").strip())
                    got.set()
            got.set()

        threading.Thread(target=drain, args=(self.proc.stdout,), daemon=True).start()
        if not got.wait(60) or not first:
            raise RuntimeError(f"collector did not start; stderr:\n{self.stderr_tail()}")
        line = first[0]
        try:
            http_addr = next(w for w in line.split() if w.startswith("http://"))[len("http://"):]
            self.port = int(http_addr.rsplit(":", 1)[1])
            grpc_addr = line.split("OTLP/gRPC on ", 1)[1].split()[0]
            self.grpc_port = int(grpc_addr.rsplit(":", 1)[1])
        except (StopIteration, IndexError, ValueError):
            raise RuntimeError(f"cannot parse the listening line {line!r}")
        log(f"collector pid {self.proc.pid}: {line}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_mb(self) -> float | None:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except (OSError, AttributeError):
            return None
        return None

    def fds(self) -> int | None:
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except (OSError, AttributeError):
            return None

    def cpu_seconds(self) -> float | None:
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, AttributeError, IndexError, ValueError):
            return None

    def settle(self, limit: float = 90.0, window: float = 1.0, max_share: float = 0.1) -> float:
        """Waits (at most `limit` s) until the collector used under `max_share` of a core
        for one `window`, so work left over from the previous class does not count
        against the next one. Returns the seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit and self.alive():
            a = self.cpu_seconds()
            time.sleep(window)
            b = self.cpu_seconds()
            if a is None or b is None or (b - a) / window < max_share:
                break
        return time.monotonic() - t0

    def stderr_tail(self, n: int = 20) -> str:
        try:
            with open(os.path.join(self.tmp, "stderr.log"), "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None

    def healthz(self) -> object:
        status, _ = http_once(self.port, "GET", "/healthz", None, {}, source_ip=MONITOR_ADDR, timeout=5)
        return status


# --------------------------------------------------------------------------------------
# Tenant B: the neighbour being measured
# --------------------------------------------------------------------------------------

def b_span(trace_id: str | None = None) -> dict:
    return {"tenantId": "B", "trace_id": trace_id or str(uuid.uuid4()), "id": str(uuid.uuid4()),
            "name": "llm.generate", "startTime": now_iso(-0.005), "endTime": now_iso(),
            "durationMs": 5, "status": "ok",
            "attributes": {"model": "claude-sonnet-4", "input_tokens": 10, "output_tokens": 5},
            "events": []}


class TenantB:
    """Two seed-style senders (one span per POST, a fresh connection each, as the seed's
    client does), one batched flusher (50 spans every 200 ms) and one OTLP/gRPC probe
    (one span every 200 ms on a persistent HTTP/2 connection, as an OTel SDK does)."""

    SINGLE_SENDERS = 2
    SINGLE_PAUSE = 0.02
    BATCH_EVERY = 0.2

    def __init__(self, col: Collector, deadline: float):
        self.col = col
        self.deadline = deadline
        self.headers = {"Authorization": f"Bearer {col.keys['B']}", "Content-Type": "application/json"}
        self.lock = threading.Lock()
        self.http: list[tuple[str, float, object]] = []   # (kind, ms, outcome)
        self.grpc: list[tuple[float, str]] = []
        self.threads = [threading.Thread(target=self._single, daemon=True) for _ in range(self.SINGLE_SENDERS)]
        self.threads.append(threading.Thread(target=self._batch, daemon=True))
        self.threads.append(threading.Thread(target=self._grpc, daemon=True))

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        for t in self.threads:
            t.join(max(0.1, self.deadline + CLIENT_TIMEOUT + 2 - time.monotonic()))

    def _record(self, kind: str, t0: float, status) -> None:
        ms = (time.monotonic() - t0) * 1000
        with self.lock:
            self.http.append((kind, ms, status))

    def _single(self) -> None:
        for _ in range(100_000):
            if time.monotonic() >= self.deadline:
                return
            body = json.dumps(b_span()).encode()
            t0 = time.monotonic()
            status, _ = http_once(self.col.port, "POST", "/api/traces", body, self.headers, source_ip=B_ADDR)
            self._record("single", t0, status)
            time.sleep(self.SINGLE_PAUSE)

    def _batch(self) -> None:
        start = time.monotonic()
        for k in range(100_000):
            due = start + k * self.BATCH_EVERY
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if time.monotonic() >= self.deadline:
                return
            trace = str(uuid.uuid4())
            body = json.dumps([b_span(trace) for _ in range(50)]).encode()
            t0 = time.monotonic()
            status, _ = http_once(self.col.port, "POST", "/api/traces", body, self.headers, source_ip=B_ADDR)
            self._record("batch50", t0, status)

    def _grpc(self) -> None:
        try:  # an SDK holds its connection open: set it up before the timed loop
            conn = H2Conn(self.col.grpc_port, B_ADDR)
        except OSError:
            conn = None
        start = time.monotonic()
        md = [("authorization", f"Bearer {self.col.keys['B']}")]
        for k in range(100_000):
            due = start + k * self.BATCH_EVERY
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if time.monotonic() >= self.deadline:
                break
            t0 = time.monotonic()
            try:
                if conn is None or conn.closed:
                    conn = H2Conn(self.col.grpc_port, B_ADDR)
                msg = grpc_message(otlp_span(os.urandom(16), os.urandom(8), "llm.generate"), False)
                outcome = grpc_outcome(conn.unary(GRPC_TRACE_PATH, md, msg, CLIENT_TIMEOUT))
                if outcome != "ok":
                    conn.close()
                    conn = None
            except (OSError, ConnectionError) as e:
                outcome = f"error:{type(e).__name__}"
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.grpc.append(((time.monotonic() - t0) * 1000, outcome))
        if conn is not None:
            conn.close()

    def summary(self) -> dict:
        with self.lock:
            http_rows = list(self.http)
            grpc_rows = list(self.grpc)
        lat = [ms for _, ms, _ in http_rows]
        ok = [isinstance(s, int) and 200 <= s < 300 for _, _, s in http_rows]
        outcomes = Counter(str(s) for _, _, s in http_rows)
        by_kind = {}
        for kind in ("single", "batch50"):
            ks = [ms for k, ms, _ in http_rows if k == kind]
            by_kind[kind] = {"requests": len(ks), "p50_ms": pct(ks, 50), "p99_ms": pct(ks, 99),
                             "max_ms": max(ks) if ks else None}
        glat = [ms for ms, _ in grpc_rows]
        return {
            "requests": len(http_rows),
            "errors": sum(1 for x in ok if not x),
            "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": max(lat) if lat else None,
            "outcomes": dict(outcomes),
            "by_kind": by_kind,
            "grpc": {"requests": len(grpc_rows), "errors": sum(1 for _, o in grpc_rows if o != "ok"),
                     "p50_ms": pct(glat, 50), "p99_ms": pct(glat, 99),
                     "outcomes": dict(Counter(o for _, o in grpc_rows))},
        }


# --------------------------------------------------------------------------------------
# The attacks. Each runs in a child process (so its Python threads do not steal B's
# GIL), stops at `deadline` or when `stop` is set, and returns a dict of counters.
# --------------------------------------------------------------------------------------

class Ctx:
    def __init__(self, col: Collector, name: str, deadline: float, stop, threads: int, bomb_bytes: int):
        self.port, self.grpc_port = col.port, col.grpc_port
        self.key_a = col.keys["A"]
        self.src = ATTACKER_ADDR[name]
        self.deadline = deadline
        self.stop = stop
        self.threads = threads
        self.bomb_bytes = bomb_bytes

    def running(self) -> bool:
        return time.monotonic() < self.deadline and not self.stop.is_set()


def run_threads(n: int, fn) -> Counter:
    """Runs fn(i, counter) in n threads, merging their counters."""
    counters = [Counter() for _ in range(n)]
    ts = [threading.Thread(target=fn, args=(i, counters[i]), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    total = Counter()
    for c in counters:
        total.update(c)
    return total


def attack_none(ctx: Ctx) -> dict:
    while ctx.running():
        time.sleep(0.05)
    return {}


def _bombs(ctx: Ctx, authed: bool) -> dict:
    raw_json = json_bomb(ctx.bomb_bytes)
    raw_pb = otlp_bomb(ctx.bomb_bytes)
    json_gz, pb_gz = gz(raw_json), gz(raw_pb)
    auth = {"Authorization": f"Bearer {ctx.key_a}"} if authed else {}
    http_targets = [
        ("/api/traces", json_gz, "application/json"),
        ("/api/logs", json_gz, "application/json"),
        ("/v1/traces", pb_gz, "application/x-protobuf"),
        ("/v1/logs", pb_gz, "application/x-protobuf"),
    ]
    grpc_msg = grpc_message(pb_gz, compressed=True)
    grpc_md = [("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip")]
    if authed:
        grpc_md.append(("authorization", f"Bearer {ctx.key_a}"))
    grpc_targets = [GRPC_TRACE_PATH, GRPC_LOGS_PATH]

    def worker(i: int, c: Counter) -> None:
        ka = KeepAlive(ctx.port, ctx.src)
        h2 = None
        for m in range(1_000_000):
            if not ctx.running():
                break
            n = m + i  # threads start on different targets
            if n % 3 == 2:  # every third request goes over gRPC
                path = grpc_targets[(n // 3) % 2]
                try:
                    if h2 is None or h2.closed:
                        h2 = H2Conn(ctx.grpc_port, ctx.src)
                    out = grpc_outcome(h2.unary(path, grpc_md, grpc_msg, CLIENT_TIMEOUT))
                    if out != "ok" and out != "grpc-error":
                        h2.close()
                        h2 = None
                except (OSError, ConnectionError) as e:
                    out = f"error:{type(e).__name__}"
                    h2 = None
                c[f"grpc {path.split('.')[-2].split('/')[0]} {out}"] += 1
            else:
                path, body, ctype = http_targets[n % len(http_targets)]
                headers = dict(auth, **{"Content-Type": ctype, "Content-Encoding": "gzip"})
                status, _ = ka.request("POST", path, body, headers)
                c[f"POST {path} {status}"] += 1
        ka.close()
        if h2 is not None:
            h2.close()

    c = run_threads(ctx.threads, worker)
    c["bomb: compressed json bytes"] = len(json_gz)
    c["bomb: expanded json bytes"] = len(raw_json)
    c["bomb: compressed protobuf bytes"] = len(pb_gz)
    c["bomb: expanded protobuf bytes"] = len(raw_pb)
    c["bomb: empty spans per protobuf"] = (len(raw_pb) - 8) // 2
    return dict(c)


def attack_gzip_bomb_auth(ctx: Ctx) -> dict:
    return _bombs(ctx, authed=True)


def attack_gzip_bomb_noauth(ctx: Ctx) -> dict:
    return _bombs(ctx, authed=False)


def _status_of(data: bytes) -> str:
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = line.split()
    return parts[1] if len(parts) >= 2 and line.startswith("HTTP/") else "?"


def attack_slow_body(ctx: Ctx, conns: int = 64, length: int = 100_000) -> dict:
    c = Counter()
    head = (f"POST /api/traces HTTP/1.1\r\nHost: {HOST}:{ctx.port}\r\n"
            f"Authorization: Bearer {ctx.key_a}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()
    socks: dict[int, dict] = {}

    def opener(slot: int) -> None:
        try:
            s = socket.create_connection((HOST, ctx.port), timeout=5, source_address=(ctx.src, 0))
            s.sendall(head + b"[")
            s.setblocking(False)
            socks[slot] = {"s": s, "sent": 1, "t0": time.monotonic()}
            c["opened"] += 1
        except OSError as e:
            c[f"connect error {type(e).__name__}"] += 1

    for i in range(conns):
        opener(i)
    reopen_budget = 20 * conns
    while ctx.running():
        tick = time.monotonic()
        for slot in range(conns):
            st = socks.get(slot)
            if st is None:
                if reopen_budget > 0:
                    reopen_budget -= 1
                    opener(slot)
                continue
            s = st["s"]
            closed = False
            try:
                data = s.recv(4096)
                if data:
                    c[f"server answered {_status_of(data)} after {st['sent']} bytes"] += 1
                closed = True  # an answer or EOF: the server gave up on this body
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            if not closed:
                try:
                    s.send(b" ")
                    st["sent"] += 1
                    c["bytes trickled"] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    closed = True
            if closed:
                c["closed by server"] += 1
                c["held seconds (sum)"] += int(time.monotonic() - st["t0"])
                s.close()
                socks.pop(slot, None)
        ctx.stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))
    c["still open at end"] = len(socks)
    for st in socks.values():
        st["s"].close()
    return dict(c)


def attack_idle_conns(ctx: Ctx, idle_http: int = 500, idle_grpc: int = 100, half: int = 100) -> dict:
    c = Counter()
    half_req = (f"POST /api/traces HTTP/1.1\r\nHost: {HOST}:{ctx.port}\r\nContent-Ty").encode()
    slots = ([("idle-http", ctx.port, b"")] * idle_http + [("idle-grpc", ctx.grpc_port, b"")] * idle_grpc
             + [("half-header", ctx.port, half_req)] * half)
    socks: dict[int, dict] = {}
    sel = selectors.DefaultSelector()

    def opener(i: int) -> None:
        kind, port, first = slots[i]
        try:
            s = socket.create_connection((HOST, port), timeout=5, source_address=(ctx.src, 0))
            if first:
                s.sendall(first)
            s.setblocking(False)
            socks[i] = {"s": s, "t0": time.monotonic()}
            sel.register(s, selectors.EVENT_READ, i)
            c[f"{kind} opened"] += 1
        except OSError as e:
            c[f"{kind} connect error {type(e).__name__}"] += 1

    for i in range(len(slots)):
        if not ctx.running():
            break
        opener(i)
    c["open after initial burst"] = len(socks)
    peak = len(socks)
    reopen_budget = 10 * len(slots)
    while ctx.running():
        for key, _ in sel.select(timeout=0.2):
            i = key.data
            st = socks.get(i)
            if st is None:
                continue
            kind = slots[i][0]
            try:
                data = st["s"].recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:  # an HTTP answer (e.g. 408) or the gRPC server's SETTINGS: keep holding
                label = _status_of(data) if slots[i][1] == ctx.port else "h2 frames"
                c[f"{kind} server sent {label}"] += 1
                continue
            c[f"{kind} closed by server"] += 1
            c[f"{kind} held ms (sum)"] += int((time.monotonic() - st["t0"]) * 1000)
            sel.unregister(st["s"])
            st["s"].close()
            socks.pop(i, None)
        for i in range(len(slots)):   # keep the pressure up: reopen what the server closed
            if i not in socks and reopen_budget > 0 and ctx.running():
                reopen_budget -= 1
                opener(i)
        peak = max(peak, len(socks))
    c["peak open"] = peak
    c["still open at end"] = len(socks)
    for st in socks.values():
        st["s"].close()
    sel.close()
    return dict(c)


def attack_h2_stalls(ctx: Ctx, streams: int = 128) -> dict:
    c = Counter()
    # a gRPC message prefix announcing 1,000,000 bytes, then two bytes of it, then nothing
    stall = b"\x00" + struct.pack(">I", 1_000_000) + b"\x0a\x80"
    md = [("grpc-timeout", "3600S")]
    conn = None
    open_ids: set[int] = set()
    reconnects = 0
    while ctx.running() and reconnects < 50:
        try:
            if conn is None or conn.closed:
                if conn is not None:
                    reconnects += 1
                conn = H2Conn(ctx.grpc_port, ctx.src)
                c["connections"] += 1
                open_ids = set()
            while len(open_ids) < streams and ctx.running() and conn.next_sid < (1 << 30):
                path = GRPC_TRACE_PATH if conn.next_sid % 4 == 1 else GRPC_LOGS_PATH
                sid = conn.open_stream(path, md)
                conn.send_data(sid, stall, end_stream=False)
                open_ids.add(sid)
                c["streams opened"] += 1
            deadline = time.monotonic() + 0.25
            while time.monotonic() < deadline:
                if not conn.pump(max(0.001, deadline - time.monotonic())):
                    break
            for sid in list(open_ids):
                st = conn.streams.get(sid)
                if st and st["done"]:
                    out = grpc_outcome(st)
                    c[f"stream ended by server: {out}"] += 1
                    c["stream held ms (sum)"] += int((time.monotonic() - st["t0"]) * 1000)
                    open_ids.discard(sid)
                    conn.streams.pop(sid, None)
            c["peak stalled streams"] = max(c["peak stalled streams"], len(open_ids))
        except (OSError, ConnectionError) as e:
            c[f"connection ended: {type(e).__name__}"] += 1
            if conn is not None:
                if conn.goaway is not None:
                    c[f"goaway code {conn.goaway}"] += 1
                conn.close()
            conn = None
            ctx.stop.wait(0.05)
    c["stalled streams at end"] = len(open_ids)
    if conn is not None:
        conn.close()
    return dict(c)


def attack_search_flood(ctx: Ctx, concurrency: int = 16) -> dict:
    auth = {"Authorization": f"Bearer {ctx.key_a}"}
    queries = [
        "/api/logs?q=zzz&limit=1000",
        "/api/logs?q=zzz&limit=1000&order=asc&since=7d",
        "/api/traces?attr=model%3Dzzz&limit=1000",
        "/api/traces?attr=input_tokens%3D999999&limit=1000&since=30d",
    ]
    lat: list[list[float]] = [[] for _ in range(concurrency)]

    def worker(i: int, c: Counter) -> None:
        ka = KeepAlive(ctx.port, ctx.src, timeout=30)
        for n in range(1_000_000):
            if not ctx.running():
                break
            path = queries[(i + n) % len(queries)]
            t0 = time.monotonic()
            status, _ = ka.request("GET", path, None, auth)
            lat[i].append((time.monotonic() - t0) * 1000)
            c[f"GET {path.split('?')[0]} {status}"] += 1
        ka.close()

    c = run_threads(concurrency, worker)
    all_lat = [x for lst in lat for x in lst]
    c["search p50 ms"] = int(pct(all_lat, 50) or 0)
    c["search p99 ms"] = int(pct(all_lat, 99) or 0)
    return dict(c)


def attack_vm_close_flood(ctx: Ctx, concurrency: int = 256) -> dict:
    auth = {"Authorization": f"Bearer {ctx.key_a}"}

    def worker(i: int, c: Counter) -> None:
        ka = KeepAlive(ctx.port, ctx.src)
        for _ in range(100_000):
            if not ctx.running():
                break
            vm = f"vm-{secrets.token_hex(8)}"
            status, _ = ka.request("POST", f"/api/vms/{vm}/terminated", None, auth)
            c[f"POST /api/vms/*/terminated {status}"] += 1
        ka.close()

    return dict(run_threads(concurrency, worker))


def attack_bad_numbers(ctx: Ctx) -> dict:
    headers = {"Authorization": f"Bearer {ctx.key_a}", "Content-Type": "application/json"}
    bad_attrs = [
        {"swarm.cost_usd": "abc"},
        {"swarm.cost_usd": 1e308},
        {"swarm.cost_usd": -1e308},
        {"swarm.cost_usd": 1e308, "gen_ai.request.model": "claude-sonnet-4-5",
         "gen_ai.usage.input_tokens": 1e308, "gen_ai.usage.output_tokens": -1e308},
    ]

    def worker(i: int, c: Counter) -> None:
        ka = KeepAlive(ctx.port, ctx.src)
        for n in range(1_000_000):
            if not ctx.running():
                break
            attrs = bad_attrs[n % len(bad_attrs)]
            span = {"tenantId": "A", "trace_id": str(uuid.uuid4()), "id": str(uuid.uuid4()),
                    "name": "llm.generate", "vm_id": f"vm-a-{i}", "startTime": now_iso(-1),
                    "attributes": attrs, "events": []}
            status, body = ka.request("POST", "/api/traces", json.dumps(span).encode(), headers)
            c[f"open span {list(attrs.values())[0]!r}: {status}"] += 1
            done = dict(span, endTime=now_iso(), status="ok")
            status, body = ka.request("POST", "/api/traces", json.dumps(done).encode(), headers)
            c[f"completed copy {list(attrs.values())[0]!r}: {status}"] += 1
        ka.close()

    return dict(run_threads(max(2, ctx.threads), worker))


def attack_wrong_key(ctx: Ctx, total: int = 1000, concurrency: int = 8) -> dict:
    headers = {"Authorization": "Bearer ssk_" + secrets.token_hex(32), "Content-Type": "application/json"}
    left = [total]
    lock = threading.Lock()

    def worker(i: int, c: Counter) -> None:
        ka = KeepAlive(ctx.port, ctx.src)
        while ctx.running():
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            span = dict(b_span(), tenantId="B")
            status, _ = ka.request("POST", "/api/traces", json.dumps(span).encode(), headers)
            c[f"POST /api/traces wrong key {status}"] += 1
        ka.close()

    c = run_threads(concurrency, worker)
    c["requests sent"] = total - left[0]
    return dict(c)


ATTACKS = {
    "none": attack_none,
    "gzip-bomb-auth": attack_gzip_bomb_auth,
    "gzip-bomb-noauth": attack_gzip_bomb_noauth,
    "slow-body": attack_slow_body,
    "idle-conns": attack_idle_conns,
    "h2-stalls": attack_h2_stalls,
    "search-flood": attack_search_flood,
    "vm-close-flood": attack_vm_close_flood,
    "bad-numbers": attack_bad_numbers,
    "wrong-key": attack_wrong_key,
}


def _attack_child(name: str, ctx: Ctx, q) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    except (ValueError, OSError):
        pass
    try:
        result = ATTACKS[name](ctx)
    except Exception:  # report, do not hang the parent
        result = {"attack crashed": 1, "traceback": traceback.format_exc()}
    q.put(result)


# --------------------------------------------------------------------------------------
# Prefill for the search flood
# --------------------------------------------------------------------------------------

def prefill_a(col: Collector, lines: int, spans: int, seconds: float) -> dict:
    """A ingests `lines` log lines and `spans` spans (bounded by `seconds`) so searches are slow."""
    headers = {"Authorization": f"Bearer {col.keys['A']}", "Content-Type": "application/x-ndjson",
               "Content-Encoding": "gzip"}
    deadline = time.monotonic() + seconds
    words = ["claimed", "ticket", "agent", "retrying", "overloaded", "pushed", "branch", "clone", "tests",
             "passed", "failed", "diff", "review", "merge", "cache", "token", "queue", "spawned"]
    done = Counter()
    lock = threading.Lock()
    batch = 5000
    todo = [lines // batch]

    def log_worker(i: int) -> None:
        rnd = random.Random(i)
        ka = KeepAlive(col.port, ATTACKER_ADDR["search-flood"], timeout=60)
        while time.monotonic() < deadline:
            with lock:
                if todo[0] <= 0:
                    break
                todo[0] -= 1
            trace = str(uuid.uuid4())
            body = "\n".join(json.dumps({
                "timestamp": now_iso(-rnd.random() * 3600), "level": rnd.choice(["info", "warn", "debug"]),
                "message": " ".join(rnd.choice(words) for _ in range(8)) + f" #{rnd.randrange(10**9)}",
                "trace_id": trace, "agent_id": f"agent-{rnd.randrange(64)}",
                "metadata": {"queue": "default", "n": rnd.randrange(1000)}}) for _ in range(batch)).encode()
            for _ in range(20):
                status, _ = ka.request("POST", "/api/logs", gz(body), headers)
                if status in (200, 202):
                    with lock:
                        done["lines"] += batch
                    break
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
        ka.close()

    ts = [threading.Thread(target=log_worker, args=(i,), daemon=True) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(max(0.1, deadline - time.monotonic() + 65))
    sh = {"Authorization": f"Bearer {col.keys['A']}", "Content-Type": "application/json",
          "Content-Encoding": "gzip"}
    ka = KeepAlive(col.port, ATTACKER_ADDR["search-flood"], timeout=60)
    for _ in range(spans // 1000):
        if time.monotonic() >= deadline:
            break
        trace = str(uuid.uuid4())
        body = json.dumps([{"tenantId": "A", "trace_id": trace, "id": str(uuid.uuid4()),
                            "name": "llm.generate", "startTime": now_iso(-1), "endTime": now_iso(),
                            "attributes": {"model": "claude-sonnet-4", "input_tokens": 10,
                                           "output_tokens": 5, "repo": "app"}} for _ in range(1000)]).encode()
        status, _ = ka.request("POST", "/api/traces", gz(body), sh)
        if status in (200, 202):
            done["spans"] += 1000
    ka.close()
    return dict(done)


# --------------------------------------------------------------------------------------
# Running a class
# --------------------------------------------------------------------------------------

class RssSampler:
    def __init__(self, col: Collector):
        self.col = col
        self.stop = threading.Event()
        self.peak = 0.0
        self.peak_fds = 0
        self.samples = 0
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set() and n < 200_000:
            r = self.col.rss_mb()
            if r is not None:
                self.peak = max(self.peak, r)
                self.samples += 1
            if n % 10 == 0:
                f = self.col.fds()
                if f is not None:
                    self.peak_fds = max(self.peak_fds, f)
            n += 1
            self.stop.wait(0.05)

    def start(self) -> None:
        self.t.start()

    def finish(self) -> None:
        self.stop.set()
        self.t.join(2)


def run_class(name: str, col: Collector, args, mpctx) -> dict:
    log(f"class {name}: start ({args.seconds:g} s, attacker {ATTACKER_ADDR[name]})")
    restarted_before = False
    if args.fresh_per_class and col.alive() and col.starts > 0 and name != CLASSES[0]:
        col.stop()
        col.start()
    if not col.alive():
        log("collector is not running: restarting it")
        col.stop()
        col.start()
        restarted_before = True
    extra: dict = {}
    if name == "search-flood":
        t0 = time.monotonic()
        extra["prefill"] = prefill_a(col, args.prefill_lines, args.prefill_spans, args.prefill_seconds)
        extra["prefill"]["seconds"] = round(time.monotonic() - t0, 1)
        log(f"  prefill: {extra['prefill']}")
    settled = col.settle()
    if settled > 1.5:
        log(f"  waited {settled:.1f} s for the collector to go quiet")
    rss_before = col.rss_mb()
    fds_before = col.fds()
    sampler = RssSampler(col)
    sampler.start()
    deadline = time.monotonic() + args.seconds
    stop = mpctx.Event()
    q = mpctx.Queue()
    ctx = Ctx(col, name, deadline, stop, args.threads, args.bomb_bytes)
    child = mpctx.Process(target=_attack_child, args=(name, ctx, q), daemon=True)
    child.start()
    b = TenantB(col, deadline)
    b.start()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if not col.alive():
            break
    b.join()
    stop.set()
    attack: dict
    try:
        attack = q.get(timeout=20)
    except Exception:
        attack = {"no report from the attack process": 1}
    child.join(5)
    if child.is_alive():
        child.terminate()
        child.join(5)
    # Work the attack left in flight (bodies still being decoded, queued writes) still
    # belongs to this class: keep sampling until the collector goes quiet.
    drained = col.settle() if col.alive() else 0.0
    sampler.finish()
    died = not col.alive()
    exit_info = None
    if died:
        exit_info = col.proc.returncode if col.proc else None
        log(f"  COLLECTOR DIED (exit {exit_info}); stderr tail:\n{col.stderr_tail()}")
    health = "collector died" if died else col.healthz()
    bs = b.summary()
    res = {
        "class": name,
        "attacker_address": ATTACKER_ADDR[name],
        "seconds": args.seconds,
        "b": bs,
        "rss_before_mb": rss_before,
        "peak_rss_mb": max(sampler.peak, rss_before or 0.0) if sampler.samples else None,
        "rss_after_mb": None if died else col.rss_mb(),
        "fds_before": fds_before,
        "peak_fds": sampler.peak_fds,
        "healthz": health,
        "collector_died": died,
        "collector_exit": exit_info,
        "restarted_before_class": restarted_before,
        "settle_seconds": round(settled, 1),
        "drain_seconds_after_attack": round(drained, 1),
        "attack": attack,
        **extra,
    }
    misses = []
    if died:
        misses.append("collector died")
    if health != 200 and not died:
        misses.append(f"healthz {health}")
    if bs["errors"] > 0:
        misses.append(f"B errors {bs['errors']} > 0")
    if bs["p99_ms"] is None or bs["p99_ms"] > TARGET_P99_MS:
        misses.append(f"B p99 {fmt(bs['p99_ms'])} ms > {TARGET_P99_MS:g}")
    if res["peak_rss_mb"] is None or res["peak_rss_mb"] > TARGET_RSS_MB:
        misses.append(f"peak RSS {fmt(res['peak_rss_mb'])} MB > {TARGET_RSS_MB:g}")
    if bs["grpc"]["errors"] > 0:
        misses.append(f"B gRPC errors {bs['grpc']['errors']} > 0")
    if bs["grpc"]["p99_ms"] is None or bs["grpc"]["p99_ms"] > TARGET_GRPC_P99_MS:
        misses.append(f"B gRPC p99 {fmt(bs['grpc']['p99_ms'])} ms > {TARGET_GRPC_P99_MS:g}")
    res["misses"] = misses
    log(f"class {name}: B {bs['requests']} req, {bs['errors']} err, p50 {fmt(bs['p50_ms'])} ms, "
        f"p99 {fmt(bs['p99_ms'])} ms; gRPC {bs['grpc']['requests']} req {bs['grpc']['errors']} err; "
        f"peak RSS {fmt(res['peak_rss_mb'])} MB; healthz {health}; "
        + ("OK" if not misses else "MISSED: " + "; ".join(misses)))
    if died:
        col.stop()
        try:
            col.start()
        except Exception as e:  # noqa: BLE001
            log(f"  restart failed: {e}")
    return res


def fmt(v, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def print_table(results: list[dict]) -> None:
    cols = ["class", "B req", "B err", "p50 ms", "p99 ms", "peak RSS MB", "RSS before MB",
            "gRPC req/err", "gRPC p99 ms", "healthz", "targets (B err==0, p99<=50ms, RSS<=300MB; B gRPC err==0, p99<=200ms)"]
    rows = []
    for r in results:
        b = r["b"]
        rows.append([
            r["class"], str(b["requests"]), str(b["errors"]), fmt(b["p50_ms"]), fmt(b["p99_ms"]),
            fmt(r["peak_rss_mb"]), fmt(r["rss_before_mb"]),
            f"{b['grpc']['requests']}/{b['grpc']['errors']}", fmt(b["grpc"]["p99_ms"]),
            str(r["healthz"]),
            "ok" if not r["misses"] else "MISS: " + "; ".join(r["misses"]),
        ])
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(cols)]
    line = " | ".join(c.ljust(w) for c, w in zip(cols, widths))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(v.ljust(w) for v, w in zip(row, widths)))
    print()
    for r in results:
        errs = {k: v for k, v in r["b"]["outcomes"].items() if not (k.isdigit() and 200 <= int(k) < 300)}
        gerrs = {k: v for k, v in r["b"]["grpc"]["outcomes"].items() if k != "ok"}
        att = {k: v for k, v in r["attack"].items() if k != "traceback"}
        print(f"{r['class']}: attacker {r['attacker_address']}: {json.dumps(att, sort_keys=True)}")
        if errs or gerrs:
            print(f"    B non-2xx: {json.dumps(errs)}  B gRPC failures: {json.dumps(gerrs)}")
        print(f"    B single p99 {fmt(r['b']['by_kind']['single']['p99_ms'])} ms, batch50 p99 "
              f"{fmt(r['b']['by_kind']['batch50']['p99_ms'])} ms, B max {fmt(r['b']['max_ms'])} ms; "
              f"fds {r['fds_before']} -> peak {r['peak_fds']}; RSS after {fmt(r['rss_after_mb'])} MB; "
              f"collector busy {r['drain_seconds_after_attack']} s after the attack stopped")
        if "traceback" in r["attack"]:
            print("    attack traceback:\n" + r["attack"]["traceback"])


# --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("SWARMSCOPE_BIN", "/work/main/target/debug/swarmscope"))
    ap.add_argument("--seconds", type=float, default=8.0, help="attack duration per class (default 8)")
    ap.add_argument("--classes", default=",".join(CLASSES),
                    help="comma-separated subset, run in the canonical order: " + ",".join(CLASSES))
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--no-assert", action="store_true", help="exit 0 even when targets are missed")
    ap.add_argument("--threads", type=int, default=4, help="attacker threads for the bomb and bad-number classes")
    ap.add_argument("--bomb-bytes", type=int, default=5_000_000, help="expanded size of each gzip bomb")
    ap.add_argument("--prefill-lines", type=int, default=200_000)
    ap.add_argument("--prefill-spans", type=int, default=20_000)
    ap.add_argument("--prefill-seconds", type=float, default=60.0)
    ap.add_argument("--fresh-per-class", action="store_true",
                    help="restart the collector (same data) before every class, for clean RSS attribution")
    ap.add_argument("--wait-bin-seconds", type=float, default=1800.0,
                    help="wait this long for the binary to appear (a build may be running)")
    args = ap.parse_args()
    if not (0 < args.seconds <= 600):
        ap.error("--seconds must be in (0, 600]")
    wanted = [c.strip() for c in args.classes.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in ATTACKS]
    if unknown:
        ap.error(f"unknown classes: {unknown}")
    order = [c for c in CLASSES if c in wanted]

    waited = 0.0
    while not os.access(args.bin, os.X_OK):
        if waited >= args.wait_bin_seconds:
            log(f"{args.bin} does not exist (waited {waited:.0f} s)")
            return 2
        if waited == 0:
            log(f"waiting for {args.bin} (a build may be running)...")
        time.sleep(10)
        waited += 10
    if waited:
        time.sleep(5)  # let the linker finish writing

    tmp = tempfile.mkdtemp(prefix="swarmscope-neighbours-")
    col = Collector(args.bin, tmp)

    def cleanup() -> None:
        col.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(cleanup)

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    mpctx = mp.get_context("fork")
    results = []
    try:
        try:
            col.start()
        except RuntimeError as e:
            log(str(e))
            return 2
        for name in order:
            results.append(run_class(name, col, args, mpctx))
    finally:
        for ch in mp.active_children():
            ch.terminate()
        cleanup()

    print()
    print(f"swarmscope noisy-neighbour results ({args.bin}, {args.seconds:g} s per class, "
          f"collector started {col.starts} time(s))")
    print_table(results)
    missed = [r["class"] for r in results if r["misses"]]
    print(f"targets missed by: {', '.join(missed) if missed else 'none'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"binary": args.bin, "seconds": args.seconds,
                       "targets": {"b_errors": 0, "b_p99_ms": TARGET_P99_MS, "peak_rss_mb": TARGET_RSS_MB,
                                   "b_grpc_errors": 0, "b_grpc_p99_ms": TARGET_GRPC_P99_MS},
                       "results": results, "missed": missed}, f, indent=2, default=str)
        log(f"wrote {args.json}")
    return 1 if missed and not args.no_assert else 0


if __name__ == "__main__":
    sys.exit(main())
