#!/usr/bin/python3
"""A tiny HTTP worker that leaks memory on purpose (Python 3 stdlib only).

    corral-agent --listen=tcp://127.0.0.1:PORT -- leaky_worker.py \
        [--leak-mib-per-s=8] [--leak-slot=N] [--leak-gen=G] [--leak-max-mib=512]
        [--ready-delay-ms=N] [--ready-delay-gen=G] [--once-dir=DIR]

- Socket: fd 3 when LISTEN_FDS >= 1 and LISTEN_PID is its own pid; otherwise
  it binds 127.0.0.1:$PORT (for trying it alone).
- READY=1 (and STOPPING=1 on SIGTERM) to NOTIFY_SOCKET ('@' = abstract).
- Every request: `HTTP/1.1 200`, body `worker=<id> gen=<gen> pid=<pid> rss_kib=<n>`,
  Connection: close; `?sleep_ms=N` delays the answer. One thread per request.
- Leaks --leak-mib-per-s MiB of touched memory a second (default 0), only in
  slot --leak-slot (CORRAL_WORKER_ID) and generation --leak-gen
  (CORRAL_WORKER_GENERATION) when those are given, up to --leak-max-mib.
- --ready-delay-ms: READY=1 (and the first accept) that much later, only in
  generation --ready-delay-gen when it is given.
- --once-dir: the leak and the READY delay each happen in one process only,
  the first that matches and claims DIR/leak or DIR/ready-delay (O_EXCL);
  generations restart at 1 when a slot is scaled away and back.
- SIGTERM: stop accepting (close its copy of the listening socket), finish
  every accepted connection, exit 0. Stderr says `draining` and `drained`.
"""

import argparse
import os
import select
import signal
import socket
import sys
import threading
import time
import urllib.parse

WORKER_ID = os.environ.get("CORRAL_WORKER_ID", "-")
GENERATION = os.environ.get("CORRAL_WORKER_GENERATION", "-")
IDENTITY = f"worker={WORKER_ID} gen={GENERATION} pid={os.getpid()}"

draining = threading.Event()
leaked = []  # chunks kept alive on purpose


def say(text):
    sys.stderr.write(f"{IDENTITY} {text}\n")
    sys.stderr.flush()


def notify(message):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), path)


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def listening_socket():
    fds = int(os.environ.get("LISTEN_FDS", "0") or 0)
    pid = os.environ.get("LISTEN_PID", "")
    if fds >= 1 and pid == str(os.getpid()):
        for fd in range(3, 3 + fds):
            os.set_inheritable(fd, False)
        return socket.socket(fileno=3)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(os.environ.get("PORT", "0"))))
    s.listen(128)
    say(f"listening on {s.getsockname()}")
    return s


def serve(conn):
    try:
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        target = data.split(b"\r\n", 1)[0].split(b" ")[1].decode(errors="replace")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        sleep_ms = int(query.get("sleep_ms", ["0"])[0])
        if sleep_ms > 0:
            time.sleep(sleep_ms / 1000)
        body = f"{IDENTITY} rss_kib={rss_kib()}\n".encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Connection: close\r\nContent-Length: " + str(len(body)).encode() +
                     b"\r\n\r\n" + body)
    except OSError as e:
        say(f"connection error: {e}")
    finally:
        conn.close()


def leak(mib_per_s, max_mib):
    while not draining.is_set() and len(leaked) < max_mib // max(mib_per_s, 1):
        leaked.append(b"\xa5" * (mib_per_s << 20))  # written, so it is resident
        say(f"leaked {len(leaked) * mib_per_s} MiB, rss_kib={rss_kib()}")
        draining.wait(1.0)


def claim(once_dir, what):
    """True when there is no --once-dir, or this process is the first to
    create once_dir/what."""
    if not once_dir:
        return True
    try:
        os.close(os.open(os.path.join(once_dir, what), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--leak-mib-per-s", type=int, default=0)
    p.add_argument("--leak-slot")
    p.add_argument("--leak-gen")
    p.add_argument("--leak-max-mib", type=int, default=512)
    p.add_argument("--ready-delay-ms", type=int, default=0)
    p.add_argument("--ready-delay-gen")
    p.add_argument("--once-dir")
    args = p.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: draining.set())
    signal.signal(signal.SIGINT, lambda *_: draining.set())
    sock = listening_socket()
    sock.setblocking(False)  # every worker wakes on the shared accept queue

    leaking = args.leak_mib_per_s > 0 and \
        args.leak_slot in (None, WORKER_ID) and args.leak_gen in (None, GENERATION) and \
        claim(args.once_dir, "leak")
    if leaking:
        threading.Thread(target=leak, args=(args.leak_mib_per_s, args.leak_max_mib),
                         daemon=True).start()
    if args.ready_delay_ms > 0 and args.ready_delay_gen in (None, GENERATION) and \
            claim(args.once_dir, "ready-delay"):
        say(f"READY in {args.ready_delay_ms} ms")
        if draining.wait(args.ready_delay_ms / 1000):
            sock.close()
            say("drained before READY, exiting 0")
            return 0
    notify("READY=1")
    say(f"ready, leaking={leaking}")

    threads = []
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while not draining.is_set():
        if not poller.poll(100):
            continue
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            continue  # another worker took it
        conn.setblocking(True)
        t = threading.Thread(target=serve, args=(conn,))
        t.start()
        threads.append(t)
        threads = [t for t in threads if t.is_alive()]

    notify("STOPPING=1")
    sock.close()
    say(f"draining: SIGTERM, {sum(t.is_alive() for t in threads)} in flight")
    for t in threads:
        t.join()
    say("drained, exiting 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
