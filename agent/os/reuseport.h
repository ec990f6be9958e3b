// The kernel side of --balance=reuseport|source-ip: per-slot SO_REUSEPORT
// listening sockets, the steering program (SO_ATTACH_REUSEPORT_CBPF), the
// accept-queue length of a listener and net.ipv4.tcp_migrate_req.
#ifndef CORRAL_AGENT_OS_REUSEPORT_H_
#define CORRAL_AGENT_OS_REUSEPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/os/sockets.h"
#include "agent/supervisor/steering.h"

namespace corral::agent {

// Opens one member of a reuseport group on host:port. With `probe`, first
// binds a plain socket to the address and closes it, so an address another
// process holds fails here (EADDRINUSE) rather than being shared; use it for
// the first member (port 0 then picks the group's port).
absl::StatusOr<TcpListener> OpenReuseportMember(const std::string& host,
                                                int port, bool probe);

// Replaces the group's steering program (any member's fd will do).
absl::Status AttachSteeringProgram(int fd, const std::vector<BpfInsn>& program);

// Connections waiting in a listener's accept queue (TCP_INFO tcpi_unacked).
absl::StatusOr<int> AcceptQueueLength(int fd);

// True when closing a listener moves its queue to another group member
// (net.ipv4.tcp_migrate_req is 1, or was 0 and this process could set it).
// False when absent or not writable: the caller must not depend on it.
bool EnableTcpMigrateReq();

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_REUSEPORT_H_
