"""Processes and sockets seen from the host side, through /proc. Every
function answers for a process that is gone (empty, None or 0), so callers
can poll without catching races."""

import collections
import os


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def children(pid):
    """Host pids of pid's children (every thread's), [] when pid is gone."""
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return out
    for tid in tids:
        text = _read(f"/proc/{pid}/task/{tid}/children")
        out += [int(p) for p in (text or "").split()]
    return out


def descendants(pid):
    out, todo = [], children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def _stat_fields(pid):
    """The fields of /proc/pid/stat after the command name (state first)."""
    data = _read(f"/proc/{pid}/stat")
    return data[data.rindex(")") + 2:].split() if data else None


def proc_state(pid):
    """The state letter of /proc/pid/stat (R, S, Z, T, ...), None if gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def ppid(pid):
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def cpu_seconds(pids):
    """utime + stime of `pids` together, in seconds (gone ones count 0)."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    """VmRSS of pid in KiB (0 when gone)."""
    for line in (_read(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def thread_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except (FileNotFoundError, ProcessLookupError):
        return 0


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return 0


def ns_pids(pid):
    """NSpid of /proc/pid/status: [host pid, ..., innermost pid]."""
    for line in (_read(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    return []


def socket_inodes(pid):
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, ProcessLookupError):
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


TcpSocket = collections.namedtuple(
    "TcpSocket", "local_port remote_port state tx_queue rx_queue inode")
LISTEN = "0A"
ESTABLISHED = "01"


def tcp_sockets():
    """Every TCP socket of this network namespace (IPv4 and IPv6), from
    /proc/net/tcp*. rx_queue: bytes received that the owner has not read."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        text = _read(table)
        for line in (text or "").splitlines()[1:]:
            f = line.split()
            tx, rx = f[4].split(":")
            out.append(TcpSocket(int(f[1].rsplit(":", 1)[1], 16),
                                 int(f[2].rsplit(":", 1)[1], 16), f[3],
                                 int(tx, 16), int(rx, 16), int(f[9])))
    return out


def listening_ports(pid):
    """TCP ports pid listens on (by the sockets it holds open)."""
    inodes = socket_inodes(pid)
    return sorted({s.local_port for s in tcp_sockets()
                   if s.state == LISTEN and s.inode in inodes})


def accepted_peer_ports(pid, server_port):
    """Client ports of the TCP connections to server_port whose sockets pid
    holds open (its accepted connections)."""
    inodes = socket_inodes(pid)
    return {s.remote_port for s in tcp_sockets()
            if s.inode in inodes and s.state != LISTEN and s.local_port == server_port}


def server_has_read(server_port, client_ports):
    """True when every connection from `client_ports` to server_port has
    been accepted and everything the client sent on it has been read by the
    server (its receive queue is empty): the request is in the server's
    hands, not in the kernel's."""
    wanted = set(client_ports)
    done = {s.remote_port for s in tcp_sockets()
            if s.local_port == server_port and s.remote_port in wanted
            and s.state == ESTABLISHED and s.inode != 0 and s.rx_queue == 0}
    return done >= wanted



def sanitized(pid):
    """True when pid runs with AddressSanitizer (a CORRAL_SANITIZE build):
    its quarantine holds freed memory and it keeps fds of its own, so RSS
    and fd bounds of the normal build do not apply."""
    return "libasan" in (_read(f"/proc/{pid}/maps") or "")
