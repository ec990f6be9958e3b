// The --listen sockets and how connections are spread over the workers.
//
// kShared: one socket per --listen, inherited by every worker (the kernel
// wakes one acceptor; the spread follows its LIFO wakeup). kRoundRobin,
// kReuseport and kSourceIp: for each tcp --listen, one SO_REUSEPORT socket
// per worker slot, opened when the slot first spawns and held until the
// shutdown stops the workers (Release) or the slot is scaled away and its
// queue is empty, so a
// replacement of the slot inherits the same socket and queue. A steering
// program sends each new connection to a slot whose worker is READY: in
// turn (eBPF, round_robin.h) or by a hash (classic BPF, steering.h). kAuto
// becomes kRoundRobin when the kernel loads the eBPF program, else
// kReuseport. Unix sockets are always shared.
//
// Loop thread only.
#ifndef CORRAL_AGENT_CORE_BALANCER_H_
#define CORRAL_AGENT_CORE_BALANCER_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/os/listen_socket.h"
#include "agent/os/reuseport_ebpf.h"
#include "agent/supervisor/accept_watch.h"
#include "agent/supervisor/event.h"
#include "agent/supervisor/steering.h"
#include "agent/supervisor/worker.h"

namespace corral::agent {

class Balancer {
 public:
  Balancer(BalanceMode mode, EventSink* events);
  Balancer(const Balancer&) = delete;
  Balancer& operator=(const Balancer&) = delete;
  ~Balancer();

  // Opens every --listen (for a per-slot group, slot 0's member, which fixes
  // the port) and resolves kAuto; emits one balance_mode event saying which
  // mode is in effect and why. Errors are startup failures, among them a
  // kernel that refuses --balance=round-robin's program.
  absl::Status Open(const std::vector<ListenSpec>& specs);
  // The fds a worker of `slot` inherits, in --listen order (fd 3, 4, ...);
  // opens the slot's members on first use.
  absl::StatusOr<std::vector<int>> FdsFor(int slot);
  // After every event: re-steer when the READY slots changed; close the
  // members of slots scaled away once they are drained.
  void Update(const std::vector<WorkerView>& workers, int target_workers);

  // Shutdown, once the workers have been told to stop: closes the agent's
  // copies of every listening socket, for good. No worker will be started
  // again, so a connection that reached a socket only the agent still held
  // would wait in its queue until the agent exits and then be reset, its
  // request sent and lost; with the agent's copies gone, a socket closes
  // when its last worker stops accepting, and the kernel refuses such a
  // connection at once (nothing sent: the client may retry elsewhere).
  // Sockets a worker still holds keep serving. Update() does nothing after.
  void Release();
  bool released() const { return released_; }

  // True when every per-slot socket of `slot` has an empty accept queue.
  bool QueueEmpty(int slot) const;
  // The accept queue of every tcp socket (shared, and each per-slot
  // member), for AcceptWatch. Unix sockets are left out: TCP_INFO has no
  // queue length for them.
  std::vector<ListenerSample> SampleQueues() const;

  std::vector<std::string> addresses() const;
  size_t size() const { return listeners_.size(); }
  // The mode in effect (never kAuto after Open).
  BalanceMode mode() const { return mode_; }

 private:
  struct Group {
    std::string host;
    int port = 0;
    bool v6 = false;
    std::map<int, int> fds;  // slot -> member fd
    ReuseportGroupMap order;
    std::optional<SteeringTargets> steered;  // the program's targets now
    std::unique_ptr<EbpfRoundRobin> rr;      // kRoundRobin only
  };
  // Sets mode_ from requested_ and emits balance_mode.
  absl::Status ResolveMode();
  // kRoundRobin/kAuto: gives every group its eBPF state and first program;
  // returns why not when the kernel refuses (kAuto then falls back).
  absl::Status StartRoundRobin();
  // Attaches the program for `targets` to `g`; false (after a warning) when
  // the kernel refused it.
  bool Steer(size_t index, Group& g, const SteeringTargets& targets);
  void Warn(const std::string& message);

  const BalanceMode requested_;
  BalanceMode mode_;
  EventSink* const events_;
  std::vector<OpenListener> listeners_;  // index = --listen index
  std::map<size_t, Group> groups_;       // --listen index -> its group
  bool migrate_ = false;
  bool released_ = false;  // Release() ran: no fd of ours is open
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_CORE_BALANCER_H_
