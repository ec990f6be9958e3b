"""grpc.health.v1 from a client corral did not write (Debian's
python3-grpcio), with the two tiny messages encoded by hand: what the
kubelet's gRPC probe does. Also raw calls to any method (bytes in, bytes
out) for tests that only look at status codes."""

import grpc

UNKNOWN, SERVING, NOT_SERVING, SERVICE_UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_request(service):
    """HealthCheckRequest{service} (field 1, string; empty = absent)."""
    data = service.encode()
    return b"\x0a" + _varint(len(data)) + data if data else b""


def decode_response(buf):
    """HealthCheckResponse.status (field 1, varint); UNKNOWN when absent."""
    i, status = 0, UNKNOWN
    while i < len(buf):
        key = buf[i]
        i += 1
        if key != 0x08:
            raise ValueError(f"unexpected field key {key:#x} in HealthCheckResponse")
        shift = value = 0
        while True:
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        status = value
    return status


def identity(x):
    return x


def channel(test, target):
    """An insecure channel to `target`, closed in the test's cleanups."""
    ch = grpc.insecure_channel(target)
    test.addCleanup(ch.close)
    return ch


def raw_unary(channel, method):
    """A unary callable for `method` taking and returning raw bytes."""
    return channel.unary_unary(method, request_serializer=identity,
                               response_deserializer=identity)


def raw_stream(channel, method):
    """A stream-stream callable for `method` on raw bytes."""
    return channel.stream_stream(method, request_serializer=identity,
                                 response_deserializer=identity)


class HealthClient:
    """Check and Watch on `target` (host:port or unix:path) over an
    insecure channel, or on a given channel."""

    def __init__(self, target=None, channel=None):
        self.channel = channel or grpc.insecure_channel(target)
        self._own = channel is None
        self._check = self.channel.unary_unary(CHECK, request_serializer=encode_request,
                                               response_deserializer=decode_response)
        self._watch = self.channel.unary_stream(WATCH, request_serializer=encode_request,
                                                response_deserializer=decode_response)

    def check(self, service, timeout=5.0, wait_for_ready=False):
        """The status; a failed call raises grpc.RpcError."""
        return self._check(service, timeout=timeout, wait_for_ready=wait_for_ready)

    def probe(self, service, timeout=1.0):
        """Like the kubelet: one deadline for dial and call (wait_for_ready).
        The status, or the grpc.StatusCode of a failed call."""
        try:
            return self.check(service, timeout, wait_for_ready=True)
        except grpc.RpcError as e:
            return e.code()

    def watch(self, service, timeout=20.0):
        """An iterator of statuses (cancel() it when done)."""
        return self._watch(service, timeout=timeout)

    def close(self):
        if self._own:
            self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
