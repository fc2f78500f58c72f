"""Drives examples/embed/service over loopback with many clients at once and prints one
line per check: "ok DESCRIPTION" or "not ok DESCRIPTION: detail". Standard library only.

usage: service_clients.py MODE PORT TRACES EXPECTED MAX_LINE [PID]
  MODE      all: many clients at once, well-behaved and not; light: fewer (for valgrind);
            drain: send a lot, signal PID with SIGTERM once answers flow, check what came back
  TRACES    trace lines every well-behaved client sends
  EXPECTED  what `assay run --no-timing` writes for TRACES: each client must get exactly this
  MAX_LINE  the service's --max-line, to build a line just over it
"""
import os
import signal
import random
import socket
import struct
import sys
import threading

mode, port, traces_path, expected_path, max_line = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
traces = open(traces_path, "rb").read()
expected = open(expected_path, "rb").read()
results = []
lock = threading.Lock()


def report(ok, what, detail=""):
    with lock:
        results.append(("ok " if ok else "not ok ") + what + ("" if ok else ": " + detail))


def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    return s


def receive_all(s):
    chunks = []
    while True:
        data = s.recv(1 << 16)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def well_behaved(k, rounds):
    """Sends TRACES `rounds` times in random-sized pieces (lines split across packets)
    while a second thread reads, then half-closes and checks the whole answer."""
    rng = random.Random(k)
    payload = traces * rounds
    s = connect()
    got = []
    reader = threading.Thread(target=lambda: got.append(receive_all(s)))
    reader.start()
    i = 0
    while i < len(payload):
        n = rng.randint(1, 9000)
        s.sendall(payload[i:i + n])
        i += n
    s.shutdown(socket.SHUT_WR)
    reader.join()
    s.close()
    answer = got[0] if got else b""
    report(answer == expected * rounds, "client %d: %d traces answered in order, byte for byte" % (k, rounds * traces.count(b"\n")),
           "got %d bytes, expected %d" % (len(answer), len(expected) * rounds))


def disconnects_mid_trace():
    """Sends some traces and half of one more, then resets the connection."""
    s = connect()
    first = traces.split(b"\n")[0]
    s.sendall(traces + first[: len(first) // 2])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # RST: the service must drop its answers without harm
    report(True, "a client resetting mid-trace is survived (checked by the clients after it)")


def garbage():
    s = connect()
    first = traces.split(b"\n")[0]
    s.sendall(b"not json at all\n\x00\xff\xfe{\n[1,2]\n" + first + b"\n")
    s.shutdown(socket.SHUT_WR)
    lines = receive_all(s).decode("utf-8", "replace").splitlines()
    s.close()
    errors = [l for l in lines if '"kind":"input"' in l]
    ok = len(errors) == 3 and all('"file":"conn' in l for l in errors) and \
        '"line":1,' in errors[0] and '"line":2,' in errors[1] and '"line":3,' in errors[2]
    report(ok, "garbage lines get input-error records naming connection and line", "\n".join(lines[:4]))
    want = expected.split(b"\n")
    first_records = [l for l in want if l.startswith(b'{"trace_id":"' + first.split(b'"id":"')[1].split(b'"')[0])]
    report([l.encode() for l in lines[3:]] == first_records, "and the valid trace after them is scored",
           "\n".join(lines[3:5]))


def huge_line():
    s = connect()
    first = traces.split(b"\n")[0]
    s.sendall(b'{"id":"huge","steps":[],"x":"' + b"a" * (max_line + 10) + b'"}\n' + first + b"\n")
    s.shutdown(socket.SHUT_WR)
    lines = receive_all(s).decode().splitlines()
    s.close()
    ok = bool(lines) and '"kind":"input"' in lines[0] and "line longer than %d bytes" % max_line in lines[0]
    report(ok, "a line over --max-line gets an input error, not unbounded memory", lines[0][:200] if lines else "nothing")
    report(len(lines) > 1 and lines[1].startswith('{"trace_id":"'), "and the line after it is scored",
           lines[1][:200] if len(lines) > 1 else "nothing")


def drain(pid):
    """SIGTERM while answers flow: what comes back is whole records of a prefix of the
    traces sent, none torn, and the service exits by itself."""
    s = connect()
    payload = traces * 40
    def send():
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the service stopped reading and closed: expected
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    first = s.recv(1 << 16)
    os.kill(pid, signal.SIGTERM)
    answer = first + receive_all(s)
    sender.join(timeout=1)
    n = answer.count(b"\n")
    report(len(answer) > 0 and answer == (expected * 40)[: len(answer)] and answer.endswith(b"\n"),
           "SIGTERM: the answers sent are whole and in order (%d record lines)" % n, answer[-200:].decode("utf-8", "replace"))


if mode == "drain":
    drain(int(sys.argv[6]))
else:
    heavy = mode == "all"
    threads = [threading.Thread(target=well_behaved, args=(k, 3 if heavy else 1)) for k in range(6 if heavy else 2)]
    threads += [threading.Thread(target=f) for f in (disconnects_mid_trace, garbage, huge_line, disconnects_mid_trace)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    well_behaved(99, 1)  # the service is still healthy after all of them
for line in results:
    print(line)
