"""The worker SDK's contract with the agent, checked black-box on
corral-worker: LISTEN_FDS/LISTEN_PID, sd_notify messages, watchdog, and the
SIGTERM drain under keep-alive load."""
import http.client
import os
import signal
import socket
import tempfile
import threading
import time

import harness as h

NO_REDIS = {"REDIS_URL": "redis://127.0.0.1:%d/0" % h.free_port()}


def test_wrong_listen_pid_is_ignored():
    sock = h.listening_socket()
    shared_port = sock.getsockname()[1]
    own_port = h.free_port()
    w = h.start_worker(NO_REDIS, sock=sock, port=own_port, wrong_pid=True)
    h.wait_http(own_port)
    assert "ignoring inherited sockets: LISTEN_PID=1 is not this process" \
        in w.output(), w.output()
    # The inherited socket is not ours: nothing accepts on it.
    with socket.create_connection(("127.0.0.1", shared_port)) as s:
        s.settimeout(0.5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(100)
        except socket.timeout:
            data = None
        assert data is None, data
    assert h.stop_worker(w) == 0


def test_right_listen_pid_uses_the_socket_not_port():
    sock = h.listening_socket()
    port = sock.getsockname()[1]
    own_port = h.free_port()
    w = h.start_worker(NO_REDIS, sock=sock, port=own_port)
    h.wait_http(port)
    try:
        socket.create_connection(("127.0.0.1", own_port), timeout=0.5).close()
        raise AssertionError("bound $PORT despite an inherited socket")
    except ConnectionRefusedError:
        pass
    assert h.stop_worker(w) == 0


def test_inherited_unix_socket():
    d = tempfile.mkdtemp(prefix="corral-unix-")
    path = os.path.join(d, "http.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(16)
    w = h.start_worker(NO_REDIS, sock=sock)

    def answer():
        try:
            with socket.socket(socket.AF_UNIX) as c:
                c.settimeout(1)
                c.connect(path)
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                return c.makefile("rb").read()
        except OSError:
            return None
    body = h.wait_for(answer, 5, "an answer on the unix socket")
    assert body.startswith(b"HTTP/1.1 200") and b"hello" in body, body
    assert h.stop_worker(w) == 0


class NotifySocket:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="corral-notify-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []

    def drain(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                return self.messages


def test_notify_ready_status_watchdog_stopping():
    n = NotifySocket()
    port = h.free_port()
    w = h.start_worker(NO_REDIS, port=port,
                       extra_env={"NOTIFY_SOCKET": n.path,
                                  "WATCHDOG_USEC": "200000"})
    h.wait_for(lambda: "READY=1" in n.drain(), 5, "READY=1")
    time.sleep(0.5)
    msgs = n.drain()
    assert msgs.count("WATCHDOG=1") >= 3, msgs  # every 100 ms
    assert any(m.startswith("STATUS=serving; sessions unavailable, redis "
                            "down") for m in msgs), msgs
    assert h.stop_worker(w) == 0
    msgs = n.drain()
    assert "STOPPING=1" in msgs, msgs


def test_watchdog_pid_of_another_process_means_off():
    n = NotifySocket()
    port = h.free_port()
    w = h.start_worker(NO_REDIS, port=port,
                       extra_env={"NOTIFY_SOCKET": n.path,
                                  "WATCHDOG_USEC": "100000",
                                  "WATCHDOG_PID": "1"})
    h.wait_for(lambda: "READY=1" in n.drain(), 5, "READY=1")
    time.sleep(0.4)
    assert "WATCHDOG=1" not in n.drain()
    assert h.stop_worker(w) == 0


def _busy_client(port, results, stop):
    """Sends /heavy requests back to back on one keep-alive connection until
    the server says Connection: close."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        try:
            conn.request("GET", "/heavy?n=3000000")
        except OSError as e:
            results.append(("send-failed", repr(e)))
            return
        try:
            r = conn.getresponse()
            body = r.read()
        except http.client.RemoteDisconnected:
            # Closed while idle between our requests, before it read this
            # one: nothing was in flight (clients retry these).
            results.append(("closed-idle", None))
            return
        except Exception as e:  # noqa: BLE001
            results.append(("broken", repr(e)))
            return
        close = r.getheader("Connection", "").lower() == "close"
        results.append(("ok" if r.status == 200 and b'"n":3000000' in body
                        else "bad", close))
        if close:
            return


def test_drain_under_keep_alive_load_finishes_in_flight_requests():
    sock = h.listening_socket()  # stays open, as the agent's copy does
    port = sock.getsockname()[1]
    w = h.start_worker(NO_REDIS, sock=sock)
    h.wait_http(port)
    # Idle keep-alive connections: must be closed promptly by the drain.
    idle = []
    for _ in range(5):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/")
        c.getresponse().read()
        idle.append(c)
    results = []
    stop = threading.Event()
    threads = [threading.Thread(target=_busy_client,
                                args=(port, results, stop), daemon=True)
               for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    t_term = time.monotonic()
    w.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(15)
    code = w.proc.wait(15)
    took = time.monotonic() - t_term
    stop.set()
    print("  drained in %.2fs; outcomes: %s" % (
        took, {k: sum(1 for r in results if r[0] == k)
               for k in set(r[0] for r in results)}))
    assert code == 0, code
    assert took < 5, took
    broken = [r for r in results if r[0] not in ("ok", "closed-idle")]
    assert not broken, broken
    oks = [r for r in results if r[0] == "ok"]
    assert len(oks) > 6
    # Every busy client ended on an answered request saying Connection:
    # close (or was closed while idle), never on a lost request.
    assert sum(1 for r in oks if r[1]) + \
        sum(1 for r in results if r[0] == "closed-idle") == 6, results
    for c in idle:
        # The server closed the idle ones: the next request fails to get an
        # answer rather than hanging.
        c.sock.settimeout(2)
        assert c.sock.recv(1) == b"", "idle keep-alive connection left open"
    # The listening socket survives the worker: a new worker serves it.
    w2 = h.start_worker(NO_REDIS, sock=sock)
    h.wait_http(port)
    assert h.stop_worker(w2) == 0


def test_sigterm_with_nothing_in_flight_exits_at_once():
    port = h.free_port()
    w = h.start_worker(NO_REDIS, port=port)
    h.wait_http(port)
    start = time.monotonic()
    assert h.stop_worker(w) == 0
    assert time.monotonic() - start < 1.0


def test_drain_deadline_exits_1():
    port = h.free_port()
    w = h.start_worker(NO_REDIS, port=port, args=["--drain-timeout=300ms"])
    h.wait_http(port)
    # A request still arriving (half its header) keeps the drain waiting.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.1)
    start = time.monotonic()
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(10) == 1
    assert 0.25 < time.monotonic() - start < 2
    assert "drain did not finish within 300ms" in w.output(), w.output()
    s.close()


if __name__ == "__main__":
    h.run([
        test_wrong_listen_pid_is_ignored,
        test_right_listen_pid_uses_the_socket_not_port,
        test_inherited_unix_socket,
        test_notify_ready_status_watchdog_stopping,
        test_watchdog_pid_of_another_process_means_off,
        test_drain_under_keep_alive_load_finishes_in_flight_requests,
        test_sigterm_with_nothing_in_flight_exits_at_once,
        test_drain_deadline_exits_1,
    ])
