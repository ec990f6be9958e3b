"""HTTP/1.1 for tests: a client on plain sockets that knows, for each
request, exactly how it failed (pylib.load builds load on it).

A request ends in one of these kinds (Result.kind, RequestFailed.kind):
  ok                2xx, the whole response read
  non_2xx           any other status, the whole response read
  refused           connect() refused: nothing listens
  reset             ECONNRESET/EPIPE while sending or reading
  eof_idle          a reused keep-alive connection the server had closed
                    (FIN or RST) before this request was sent, or that ended
                    without one byte of response right after it: the server
                    closed an idle connection; clients retry these
  eof_no_response   a new connection that ended after the request was sent,
                    without one byte of response: a request lost in flight
  eof_mid_response  the connection ended inside the response
  timeout           no progress within the timeout
  error:TYPE: TEXT  anything else (a malformed response, ...)
Stdlib only.
"""

import collections
import re
import select
import socket
import time

from .waiting import wait_for

OK, NON_2XX, REFUSED, RESET = "ok", "non_2xx", "refused", "reset"
EOF_IDLE, EOF_NO_RESPONSE, EOF_MID_RESPONSE = "eof_idle", "eof_no_response", "eof_mid_response"
TIMEOUT = "timeout"
# What a killed server process can do to a request it had accepted.
LOST_IN_FLIGHT = (RESET, EOF_NO_RESPONSE, EOF_MID_RESPONSE)

_MAX_HEAD = 64 * 1024


class RequestFailed(ConnectionError):
    """A request that got no whole response; `kind` says how (see above)."""

    def __init__(self, kind, detail, received=0):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.received = received


class Headers(dict):
    """Response headers by their name as sent; lookups ignore case."""

    def _key(self, name):
        for k in self.keys():
            if k.lower() == name.lower():
                return k
        return name

    def __getitem__(self, name):
        return super().__getitem__(self._key(name))

    def __contains__(self, name):
        return super().__contains__(self._key(name))

    def get(self, name, default=None):
        return super().get(self._key(name), default)


Response = collections.namedtuple("Response", "status reason headers body")


class Connection:
    """One client connection (TCP to host:port, or a unix socket), kept open
    across requests while the server allows it. Not thread-safe."""

    def __init__(self, port=None, host="127.0.0.1", unix_path=None, timeout=10.0):
        self.address = unix_path or (host, port)
        self.unix = unix_path is not None
        self.timeout = timeout
        self.sock = None
        self.local_port = None
        self.requests = 0   # answered on the current socket
        self._buf = b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.requests = 0
        self._buf = b""

    def connect(self):
        self.local_port = None  # kept after close(): the port a failure happened on
        family = socket.AF_UNIX if self.unix else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.address)
        except ConnectionRefusedError as e:
            sock.close()
            raise RequestFailed(REFUSED, str(e)) from None
        except socket.timeout:
            sock.close()
            raise RequestFailed(TIMEOUT, f"connect to {self.address}") from None
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.local_port = None if self.unix else sock.getsockname()[1]
        self.requests = 0
        self._buf = b""

    def request(self, method, path, headers=None, body=b""):
        """Sends one request and reads its response; returns a Response or
        raises RequestFailed. The connection is closed after any failure and
        after a response that ends it."""
        try:
            return self._request(method, path, headers or {}, body)
        except RequestFailed:
            self.close()
            raise

    @property
    def reused(self):
        return self.sock is not None and self.requests > 0

    def _request(self, method, path, headers, body):
        if self.sock is None:
            self.connect()
        elif self._closed_while_idle():
            self.close()
            raise RequestFailed(EOF_IDLE, "the server closed the idle connection")
        reused = self.requests > 0
        head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
        if body:
            headers = dict(headers, **{"Content-Length": str(len(body))})
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.sock.settimeout(self.timeout)
        try:
            self.sock.sendall(head.encode() + body)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise RequestFailed(RESET, f"while sending: {e}") from None
        except socket.timeout:
            raise RequestFailed(TIMEOUT, "while sending") from None
        reader = _Reader(self.sock, self._buf, reused, time.monotonic() + self.timeout)
        response, self._buf = reader.response(method)
        self.requests += 1
        if ends_connection(response):
            self.close()
        return response

    def _closed_while_idle(self):
        """True when the server has closed (or reset) this idle connection:
        it is readable and reading would give EOF."""
        if self._buf:
            return False
        readable, _, _ = select.select([self.sock], [], [], 0)
        if not readable:
            return False
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
        except ConnectionResetError:
            return True
        if data:
            raise RequestFailed("error:UnexpectedData", f"idle connection sent {data!r}")
        return True


def ends_connection(response):
    return response.headers.get("Connection", "").lower() == "close"


class _Reader:
    """Reads one response, counting the bytes so an EOF can be placed."""

    def __init__(self, sock, buf, reused, deadline):
        self.sock = sock
        self.buf = buf
        self.received = 0
        self.reused = reused
        self.deadline = deadline

    def _more(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RequestFailed(TIMEOUT, f"after {self.received} bytes", self.received)
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise RequestFailed(TIMEOUT, f"after {self.received} bytes", self.received) from None
        except ConnectionResetError as e:
            raise RequestFailed(RESET, f"after {self.received} bytes: {e}",
                                self.received) from None
        if not data:
            raise self._eof()
        self.received += len(data)
        self.buf += data

    def _eof(self):
        if self.received == 0:
            if self.reused:
                return RequestFailed(EOF_IDLE, "closed right after the request, no byte "
                                     "of response, on a reused connection")
            return RequestFailed(EOF_NO_RESPONSE, "closed with no byte of response")
        return RequestFailed(EOF_MID_RESPONSE, f"closed after {self.received} bytes",
                             self.received)

    def _until(self, marker):
        while marker not in self.buf:
            if len(self.buf) > _MAX_HEAD:
                raise RequestFailed("error:HeadTooLong", f"{len(self.buf)} bytes", self.received)
            self._more()
        i = self.buf.index(marker)
        out, self.buf = self.buf[:i], self.buf[i + len(marker):]
        return out

    def _exactly(self, n):
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, method):
        head = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/(\d\.\d) (\d{3}) ?(.*)$", head[0])
        if not m:
            raise RequestFailed("error:BadStatusLine", repr(head[0]), self.received)
        status = int(m.group(2))
        headers = Headers()
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._chunked()
        elif "Content-Length" in headers:
            body = self._exactly(int(headers["Content-Length"]))
        else:
            body = self._to_eof()
            headers["Connection"] = "close"
        return Response(status, m.group(3), headers, body), self.buf

    def _chunked(self):
        body = b""
        while True:
            size = int(self._until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self._until(b"\r\n")  # no trailers expected
                return body
            body += self._exactly(size)
            self._until(b"\r\n")

    def _to_eof(self):
        while True:
            try:
                self._more()
            except RequestFailed as e:
                if e.kind in (EOF_MID_RESPONSE, EOF_IDLE, EOF_NO_RESPONSE):
                    out, self.buf = self.buf, b""
                    return out
                raise


# --- one-shot helpers -----------------------------------------------------------

def request(port, path, method="GET", headers=None, timeout=5.0, unix_path=None, body=b""):
    """One request on a new connection (Connection: close): a Response, or
    RequestFailed (an OSError)."""
    conn = Connection(port, unix_path=unix_path, timeout=timeout)
    try:
        return conn.request(method, path, dict(headers or {}, Connection="close"), body)
    finally:
        conn.close()


def get_once(port, path="/", host="127.0.0.1", source=None, timeout=10):
    """GET on a new connection (to `host`, from `source` when given) that
    closes after the answer; the whole response as text. For tests of
    which worker a new connection reaches."""
    with socket.create_connection((host, port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode(errors="replace")


def http_get(port, path, timeout=5.0, unix_path=None):
    """GET on a new connection: (status, body text)."""
    r = request(port, path, timeout=timeout, unix_path=unix_path)
    return r.status, r.body.decode(errors="replace")


def wait_http(port, path="/healthz", contains=None, timeout=10):
    """Waits until GET path on port answers 200 (with `contains`, bytes, in
    the body when given); a refused or failed request is just not yet."""
    def ok():
        try:
            r = request(port, path, timeout=0.5)
        except OSError:
            return False
        return r.status == 200 and (contains is None or contains in r.body)
    wait_for(ok, timeout, f"GET {path} -> 200{f' with {contains!r}' if contains else ''} "
                          f"on port {port}")


# --- the test worker's answers ----------------------------------------------------

IDENTITY_RE = re.compile(r"worker=(\S+) gen=(\S+) pid=(\d+)")


def parse_identity(body):
    """{'worker': '0', 'gen': '1', 'pid': 12} from a test worker's answer."""
    m = IDENTITY_RE.search(body or "")
    if not m:
        return None
    return {"worker": m.group(1), "gen": m.group(2), "pid": int(m.group(3))}


# --- a browser-like client ----------------------------------------------------------

class Client:
    """A keep-alive client with one cookie (corral_sid), as a browser would
    hold a session. request() returns (status, headers, body bytes) or
    raises RequestFailed."""

    def __init__(self, port, cookie=None, timeout=5, cookie_name="corral_sid"):
        self.port = port
        self.cookie = cookie
        self.cookie_name = cookie_name
        self.conn = Connection(port, timeout=timeout)

    def request(self, path, method="GET", headers=None):
        h = dict(headers or {})
        if self.cookie:
            h["Cookie"] = f"{self.cookie_name}={self.cookie}"
        r = self.conn.request(method, path, h)
        set_cookie = r.headers.get("Set-Cookie")
        if set_cookie and set_cookie.startswith(self.cookie_name + "="):
            self.cookie = set_cookie.split(";")[0].split("=", 1)[1] or None
        return r.status, r.headers, r.body

    def close(self):
        self.conn.close()


def get(port, path, cookie=None, timeout=5):
    """One GET (with a session cookie when given) on a new connection:
    (status, headers, body bytes)."""
    c = Client(port, cookie, timeout)
    try:
        return c.request(path, headers={"Connection": "close"})
    finally:
        c.close()

