"""A Python service under corral-agent with nothing but the standard library:
it serves on the socket the agent passes as fd 3 (systemd socket activation:
LISTEN_FDS, LISTEN_PID), says READY=1 over $NOTIFY_SOCKET, and on SIGTERM
stops accepting, finishes the requests in progress and exits 0.

    corral-agent --listen=tcp://0.0.0.0:8080 -- python3 app.py
    PORT=8000 python3 app.py          # alone, on its own port
"""

import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

WORKER = os.environ.get("CORRAL_WORKER_ID", "standalone")


def notify(state):
    """sd_notify(3) in five lines: one datagram to $NOTIFY_SOCKET."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(state.encode(), "\0" + path[1:] if path.startswith("@") else path)


def inherited_socket():
    """fd 3 from the agent, or None when run alone."""
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and int(os.environ.get("LISTEN_FDS", "0")) >= 1:
        return socket.socket(fileno=3)
    return None


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a drain never waits on an
    # idle keep-alive client.
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        query = parse_qs(urlparse(self.path).query)
        time.sleep(int(query.get("sleep_ms", ["0"])[0]) / 1000)  # slow requests, for trying a drain
        body = f"hello from python worker {WORKER} (pid {os.getpid()})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # one line per request on stderr, tagged by the agent
        pass


def main():
    sock = inherited_socket()
    if sock is None:
        server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8000"))), Handler)
    else:
        server = ThreadingHTTPServer(sock.getsockname()[:2], Handler, bind_and_activate=False)
        server.socket = sock
    # Request threads are joined on close: in-flight requests finish.
    server.daemon_threads = False
    server.block_on_close = True
    # shutdown() blocks until serve_forever returns: call it off the main thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    notify("READY=1")
    server.serve_forever()
    notify("STOPPING=1")
    server.server_close()


if __name__ == "__main__":
    main()
