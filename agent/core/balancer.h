// The --listen sockets and how connections are spread over the workers.
//
// kShared: one socket per --listen, inherited by every worker (the kernel
// wakes one acceptor; the spread follows its LIFO wakeup). kReuseport and
// kSourceIp: for each tcp --listen, one SO_REUSEPORT socket per worker slot,
// opened when the slot first spawns and held until the agent exits (or the
// slot is scaled away and its queue is empty), so a replacement of the slot
// inherits the same socket and queue. A steering program sends each new
// connection to a slot whose worker is READY (steering.h). Unix sockets are
// always shared.
//
// Loop thread only.
#ifndef CORRAL_AGENT_CORE_BALANCER_H_
#define CORRAL_AGENT_CORE_BALANCER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/os/listen_socket.h"
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
  // the port). Errors are startup failures.
  absl::Status Open(const std::vector<ListenSpec>& specs);
  // The fds a worker of `slot` inherits, in --listen order (fd 3, 4, ...);
  // opens the slot's members on first use.
  absl::StatusOr<std::vector<int>> FdsFor(int slot);
  // After every event: re-steer when the READY slots changed; close the
  // members of slots scaled away once they are drained.
  void Update(const std::vector<WorkerView>& workers, int target_workers);

  // True when every per-slot socket of `slot` has an empty accept queue.
  bool QueueEmpty(int slot) const;
  // The accept queue of every tcp socket (shared, and each per-slot
  // member), for AcceptWatch. Unix sockets are left out: TCP_INFO has no
  // queue length for them.
  std::vector<ListenerSample> SampleQueues() const;

  std::vector<std::string> addresses() const;
  size_t size() const { return listeners_.size(); }

 private:
  struct Group {
    std::string host;
    int port = 0;
    bool v6 = false;
    std::map<int, int> fds;  // slot -> member fd
    ReuseportGroupMap order;
    std::optional<SteeringTargets> steered;  // the program's targets now
  };
  void Warn(const std::string& message);

  const BalanceMode mode_;
  EventSink* const events_;
  std::vector<OpenListener> listeners_;  // index = --listen index
  std::map<size_t, Group> groups_;       // --listen index -> its group
  bool migrate_ = false;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_CORE_BALANCER_H_
