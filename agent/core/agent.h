// The composition of the agent: one event loop (Boost.Asio) owning the
// supervisor and every fd it watches: signals, the notify socket, worker
// output pipes and the deadline timer. The parts it wires together:
//
//   PosixProcessControl (os)  forks workers, hands back their pipes, signals
//   Supervisor                every lifecycle decision
//   WorkerOutput              pipes -> lines -> log, history, observers
//   CpuRescaler               sizing reads and the auto-rescale policy
//   MemoryGuard               usage samples and the memory-replacement policy
//   LoopControl               the control plane's door (AgentControl)
//
// Everything here runs on the thread that calls Run(); other threads may
// only post() work to the loop.
#ifndef CORRAL_AGENT_CORE_AGENT_H_
#define CORRAL_AGENT_CORE_AGENT_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/core/balancer.h"
#include "agent/core/control.h"
#include "agent/core/logger.h"
#include "agent/core/loop_control.h"
#include "agent/core/worker_output.h"
#include "agent/options.h"
#include "agent/os/listen_socket.h"
#include "agent/os/log_writer.h"
#include "agent/os/notify_socket.h"
#include "agent/os/posix_process_control.h"
#include "agent/os/signals.h"
#include "agent/os/steady_clock.h"
#include "agent/supervisor/accept_watch.h"
#include "agent/supervisor/cpu_rescaler.h"
#include "agent/supervisor/memory_guard.h"
#include "agent/supervisor/rejection_coalescer.h"
#include "agent/supervisor/supervisor.h"

namespace corral::agent {

class Agent {
 public:
  // Opens listeners and the notify socket and resolves the command. Errors
  // are startup failures to report and exit 1 on. `writer` and `cgroups`
  // (the sizing inputs) must outlive the agent.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(Options options,
                                                       SignalFd signals,
                                                       LogWriter* writer,
                                                       CgroupReader* cgroups);
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;
  ~Agent();

  // Runs until the supervisor is done; returns the process exit status.
  int Run();

  // The control plane's door into the agent (see control.h for threads).
  AgentControl* control() { return control_.get(); }
  const Options& options() const { return options_; }

 private:
  Agent(Options options, SignalFd signals, LogWriter* writer,
        CgroupReader* cgroups);
  absl::Status Open();
  std::vector<std::string> BaseEnvironment() const;
  void OnSignalFailed(const absl::Status& status);

  void WatchSignals();
  void OnSignals();
  void ReapChildren();
  void WatchNotify();
  void OnNotifyReadable();
  void HandleDatagram(const NotifyDatagram& d);
  std::optional<pid_t> AttributeToWorker(pid_t sender) const;
  void Reject(pid_t pid, const std::string& reason);
  void LogRejection(const RejectionCoalescer::Report& r);
  void OnIpcLine(pid_t pid, std::string_view line);
  void SampleUsage();
  void Housekeeping();
  // Every AcceptWatch::kSamplePeriod: the accept queues to AcceptWatch, its
  // verdict to the supervisor (readiness) and the steering.
  void SampleAccepts();
  // After every event: stop when done, else re-arm the deadline timer.
  void AfterEvent();

  // Constant after construction.
  const Options options_;
  SteadyClock clock_;

  boost::asio::io_context io_;
  SignalFd signals_;
  boost::asio::posix::stream_descriptor signal_watch_;
  std::optional<NotifySocket> notify_;
  std::optional<boost::asio::posix::stream_descriptor> notify_watch_;
  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer housekeeping_timer_;
  boost::asio::steady_timer accept_timer_;
  Logger logger_;
  WorkerOutput output_;
  CpuRescaler rescaler_;
  MemoryGuard memory_;
  std::unique_ptr<Balancer> listeners_;  // the --listen sockets
  std::string listen_names_;
  std::unique_ptr<PosixProcessControl> processes_;
  std::unique_ptr<Supervisor> supervisor_;
  std::optional<AcceptWatch> accept_watch_;  // off: --accept-stall=0

  std::unique_ptr<LoopControl> control_;

  AgentCounters counters_;  // orphans reaped, notify rejected
  RejectionCoalescer rejections_;
  // Workers reaped lately: their last datagrams may still be queued.
  std::deque<pid_t> recently_exited_;
  int initial_workers_ = 1;
  bool started_ = false;  // the supervisor has spawned its workers
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_CORE_AGENT_H_
