// Where new TCP connections go under --balance=reuseport|source-ip: one
// SO_REUSEPORT socket per worker slot, held by the agent, and a classic BPF
// program that picks, for each new connection, the socket of a slot whose
// worker is READY. This file is the pure part: the program's instructions,
// the group's index order and which slots are steered to or may be closed.
// The kernel calls are in agent/os/reuseport.h.
#ifndef CORRAL_AGENT_SUPERVISOR_STEERING_H_
#define CORRAL_AGENT_SUPERVISOR_STEERING_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "agent/supervisor/worker.h"

namespace corral::agent {

// kAuto is a request only: the agent resolves it at start to kRoundRobin
// when the kernel loads the eBPF program (round_robin.h), else kReuseport.
enum class BalanceMode { kShared, kReuseport, kSourceIp, kRoundRobin, kAuto };

std::string_view BalanceModeName(BalanceMode mode);
// "shared", "reuseport", "source-ip", "round-robin" or "auto"; nullopt for
// anything else.
std::optional<BalanceMode> ParseBalanceMode(std::string_view text);

// One classic BPF instruction, laid out as the kernel's struct sock_filter
// (agent/os/reuseport.cc checks the layout).
struct BpfInsn {
  uint16_t code = 0;
  uint8_t jt = 0;
  uint8_t jf = 0;
  uint32_t k = 0;
};

// The program for a reuseport group: a hash of the connection's SYN picks
// one of `targets` (group indexes), evenly. kSourceIp hashes the client
// address; every other mode (kRoundRobin when its eBPF program cannot be
// replaced) the TCP source port. kReuseport hashes the TCP source
// port (many connections from one host spread evenly, since consecutive
// ports land on consecutive slots); kSourceIp hashes the client address, so
// a client stays on one slot. `ipv6` says where the headers are (the program
// reads at SKF_NET_OFF: the IP header, no options/extension headers
// assumed, as in a SYN). `targets` must not be empty; at most kMaxTargets.
inline constexpr size_t kMaxSteeringTargets = 1024;
std::vector<BpfInsn> BuildSteeringProgram(BalanceMode mode, bool ipv6,
                                          const std::vector<uint32_t>& targets);

// Runs `program` on a packet the way the kernel would for the few
// instructions BuildSteeringProgram emits; `net` is the packet from its IP
// header. For tests: returns the index, or nullopt on a bad load/opcode.
std::optional<uint32_t> RunSteeringProgram(const std::vector<BpfInsn>& program,
                                           const std::vector<uint8_t>& net);

// The kernel's index order of one reuseport group: sockets are numbered in
// the order they joined; closing one moves the last into its place.
class ReuseportGroupMap {
 public:
  void Join(int slot);
  void Leave(int slot);
  std::optional<uint32_t> IndexOf(int slot) const;
  bool Has(int slot) const { return IndexOf(slot).has_value(); }
  const std::vector<int>& order() const { return order_; }

 private:
  std::vector<int> order_;  // order_[group index] = slot
};

// Group indexes new connections go to, ordered by slot: every slot below
// `target_workers` in the group with a READY process (`ready` true); when
// there is none, every slot in the group below target, else every slot in
// the group (`ready` false: connections wait in the queues until a worker
// is back).
struct SteeringTargets {
  std::vector<uint32_t> indexes;
  bool ready = false;
  bool operator==(const SteeringTargets&) const = default;
};
SteeringTargets ChooseSteeringTargets(const ReuseportGroupMap& group,
                                      const std::vector<WorkerView>& workers,
                                      int target_workers);

// Slots whose socket may be closed now: in the group, at or above
// `target_workers` (scaled away), with no process left, and either an empty
// accept queue (`queue_length(slot)` == 0) or `migrate` (the kernel moves a
// closed listener's queue to another one: net.ipv4.tcp_migrate_req).
template <typename QueueLength>
std::vector<int> ClosableSlots(const ReuseportGroupMap& group,
                               const std::vector<WorkerView>& workers,
                               int target_workers, bool migrate,
                               QueueLength queue_length) {
  std::vector<int> out;
  for (int slot : group.order()) {
    if (slot < target_workers) continue;
    bool alive = false;
    for (const WorkerView& w : workers)
      alive = alive || (w.slot == slot && w.pid != 0);
    if (alive) continue;
    if (migrate || queue_length(slot) == 0) out.push_back(slot);
  }
  return out;
}

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_STEERING_H_
