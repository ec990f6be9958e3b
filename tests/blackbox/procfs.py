"""Looking at processes and sockets from the host side, through /proc."""

import os


def children(pid):
    """Host pids of pid's children (every thread's), [] when pid is gone."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def descendants(pid):
    out, todo = [], children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def proc_state(pid):
    """The state letter of /proc/pid/stat (R, S, Z, T, ...), None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data[data.rindex(")") + 2]


def ns_pids(pid):
    """NSpid of /proc/pid/status: [host pid, ..., innermost pid]."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return []


def socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return inodes


def accepted_peer_ports(pid, server_port):
    """Client ports of the TCP connections to server_port whose sockets pid
    holds open (its accepted connections)."""
    inodes = socket_inodes(pid)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, remote, inode = fields[1], fields[2], int(fields[9])
                    listening = fields[3] == "0A"
                    if (inode in inodes and not listening
                            and int(local.split(":")[1], 16) == server_port):
                        ports.add(int(remote.split(":")[1], 16))
        except FileNotFoundError:
            pass
    return ports
