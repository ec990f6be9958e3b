// A worker READY that never accepts: an app that ignores the inherited
// socket (fd 3) and binds a port of its own looks healthy while the agent's
// port hangs. The agent owns the listening sockets, so it can see
// connections wait: AcceptWatch is fed each socket's accept-queue length
// a few times a second and decides which READY workers take none.
//
// A socket is stalled when, for `bound` in a row, every sample showed
// connections waiting and none showed fewer than the sample before (a
// connection leaves the queue only when a worker accepts it), while the same
// READY worker(s) served it. Its workers then stop counting as ready
// (Supervisor::SetNotAccepting) and "accept_stalled" names the likely cause;
// the first sample with fewer (or no) connections waiting ends the stall
// ("accept_resumed"). A new READY worker on the socket starts a new window,
// so each worker gets the whole bound. A worker so overloaded that its queue
// never shrinks for the whole bound looks the same, and is not ready either.
//
// Pure logic: no syscalls (the samples come from agent/os/reuseport.h's
// AcceptQueueLength). Loop thread only.
#ifndef CORRAL_AGENT_SUPERVISOR_ACCEPT_WATCH_H_
#define CORRAL_AGENT_SUPERVISOR_ACCEPT_WATCH_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/supervisor/clock.h"
#include "agent/supervisor/event.h"
#include "agent/supervisor/worker.h"

namespace corral::agent {

// One listening socket's accept queue at one moment.
struct ListenerSample {
  std::string address;  // "tcp://127.0.0.1:8080"
  int worker_fd = 3;    // the fd workers inherit it as (3 + --listen index)
  // The slot of a per-slot socket (--balance=reuseport, source-ip);
  // nullopt: one socket shared by every worker.
  std::optional<int> slot;
  int waiting = 0;  // connections in the accept queue
};

class AcceptWatch {
 public:
  // Samples should come every kSamplePeriod (a finer period only sees more
  // accepts). `events` must outlive this. A zero `bound` is never built:
  // the agent leaves the watch off.
  static constexpr Duration kSamplePeriod = std::chrono::milliseconds(250);
  AcceptWatch(Duration bound, EventSink* events);
  AcceptWatch(const AcceptWatch&) = delete;
  AcceptWatch& operator=(const AcceptWatch&) = delete;

  // One round of samples taken at `now`, with the workers as
  // Supervisor::Workers() lists them. Returns the pids of the READY workers
  // of every stalled socket, for Supervisor::SetNotAccepting.
  std::vector<pid_t> Observe(TimePoint now,
                             const std::vector<ListenerSample>& samples,
                             const std::vector<WorkerView>& workers);

 private:
  struct Taker {
    int slot = 0;
    pid_t pid = 0;
    bool operator==(const Taker&) const = default;
  };
  struct Watch {
    std::vector<Taker> takers;       // READY workers at the last sample
    std::optional<TimePoint> since;  // the window's first sample
    int last = 0;                    // connections waiting at the last sample
    bool stalled = false;
  };

  // Updates one socket's watch; true while it is stalled.
  bool Update(TimePoint now, const ListenerSample& sample,
              std::vector<Taker> takers, Watch& w);
  void EmitStalled(TimePoint now, const ListenerSample& sample, const Watch& w);
  void EmitResumed(const ListenerSample& sample, const Watch& w);

  // Constant after construction.
  const Duration bound_;
  EventSink* const events_;

  // By (address, slot or -1).
  std::map<std::pair<std::string, int>, Watch> watches_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_ACCEPT_WATCH_H_
