// What workers write: their stdout and stderr pipes read on the loop, split
// into lines, logged and passed to observers (the control plane keeps the
// recent ones for `corralctl logs`); and Node's IPC channel, whose "ready"
// message is a readiness notification.
//
// Loop thread only (the pipes are watched by the loop's io_context).
#ifndef CORRAL_AGENT_CORE_WORKER_OUTPUT_H_
#define CORRAL_AGENT_CORE_WORKER_OUTPUT_H_

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/log_record.h"
#include "agent/core/logger.h"
#include "agent/os/posix_process_control.h"

namespace corral::agent {

// Worker lines longer than this are split into pieces.
inline constexpr size_t kMaxLine = 16 * 1024;

// Splits a byte stream into lines. Output mode: a line longer than kMaxLine
// comes out in kMaxLine pieces, each but the last marked `cont`, and so does
// an unfinished line that grows past kMaxLine. IPC mode: whole lines only; an
// unfinished line past kMaxLine is not a message we will use and is dropped.
class LineSplitter {
 public:
  using Emit = std::function<void(std::string_view line, bool cont)>;
  explicit LineSplitter(bool ipc) : ipc_(ipc) {}

  void Feed(std::string_view data, const Emit& emit);
  // End of stream: what is left is the last line (output mode only).
  void Finish(const Emit& emit);

 private:
  const bool ipc_;
  std::string pending_;  // a line not yet ended
};

class WorkerOutput {
 public:
  // Called with each line (without '\n') a worker wrote on its Node IPC
  // channel; the owner parses it (ParseIpcMessage).
  using IpcLineFn = std::function<void(pid_t, std::string_view)>;

  // `io` and `logger` must outlive this.
  WorkerOutput(boost::asio::io_context* io, Logger* logger,
               IpcLineFn on_ipc_line);
  WorkerOutput(const WorkerOutput&) = delete;
  WorkerOutput& operator=(const WorkerOutput&) = delete;
  ~WorkerOutput();

  // Starts reading a new worker's pipes; takes ownership of them.
  void Watch(const SpawnRequest& request, pid_t pid, const WorkerPipes& pipes);
  // Every process is gone: reads what is left in the pipes, without
  // waiting, and closes them.
  void DrainSync();

  // `fn` runs for every line until RemoveObserver(id); it must not block.
  // The record is shared: an observer may keep it.
  void AddObserver(int id, std::function<void(const LogRecordPtr&)> fn);
  void RemoveObserver(int id);

 private:
  struct Reader;
  void Start(int fd, const LineSource& source, bool ipc);
  void Read(Reader* reader);
  void Finish(Reader* reader);
  void OnLine(const LineSource& source, std::string_view text, bool cont);

  // Constant after construction.
  boost::asio::io_context* const io_;
  Logger* const logger_;
  const IpcLineFn on_ipc_line_;

  std::list<std::unique_ptr<Reader>> readers_;
  uint64_t seq_ = 0;
  std::map<int, std::function<void(const LogRecordPtr&)>> observers_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_CORE_WORKER_OUTPUT_H_
