// The kernel side of --balance=round-robin (agent/supervisor/round_robin.h):
// raw bpf(2) calls, no libbpf. Loading eBPF needs CAP_BPF (or
// CAP_SYS_ADMIN) on kernels with kernel.unprivileged_bpf_disabled != 0,
// which is every distribution default.
#ifndef CORRAL_AGENT_OS_REUSEPORT_EBPF_H_
#define CORRAL_AGENT_OS_REUSEPORT_EBPF_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/supervisor/round_robin.h"

namespace corral::agent {

// The round-robin state of one reuseport group: its counter map and its
// sockarray. Loop thread only.
class EbpfRoundRobin {
 public:
  // Creates the two maps. An error means the kernel refuses eBPF to this
  // process; its message names the capability it needs.
  static absl::StatusOr<std::unique_ptr<EbpfRoundRobin>> Create();
  EbpfRoundRobin(const EbpfRoundRobin&) = delete;
  EbpfRoundRobin& operator=(const EbpfRoundRobin&) = delete;
  ~EbpfRoundRobin();

  // Puts `socket_fd` (a listening member of the group) at key `slot` of the
  // sockarray. The kernel removes it when the socket closes.
  absl::Status AddSocket(int slot, int socket_fd);
  // Loads `program` (BuildRoundRobinProgram over counter_map() and
  // sockets_map()) and attaches it to the group of `group_fd`
  // (SO_ATTACH_REUSEPORT_EBPF), replacing the group's program at once.
  absl::Status Attach(int group_fd, const std::vector<EbpfInsn>& program);

  int counter_map() const { return counter_map_; }
  int sockets_map() const { return sockets_map_; }

 private:
  EbpfRoundRobin(int counter_map, int sockets_map)
      : counter_map_(counter_map), sockets_map_(sockets_map) {}

  const int counter_map_;
  const int sockets_map_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_REUSEPORT_EBPF_H_
