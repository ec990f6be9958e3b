#include "worker/sdk/log.h"

#include <errno.h>  // program_invocation_short_name (GNU)

#include <cstdio>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"

namespace corral::worker {
namespace {

void WriteToStderr(LogSeverity, absl::string_view message) {
  const std::string line = DefaultLogLine(message);
  // One fwrite of the whole line: stderr is unbuffered, so a line from
  // another thread or process sharing the pipe cannot land inside it.
  fwrite(line.data(), 1, line.size(), stderr);
}

// The sink is shared: Log copies the pointer under the lock and calls the
// sink outside it, so a slow sink never blocks SetLogSink on another thread.
struct SinkHolder {
  std::mutex mu;
  std::shared_ptr<const LogSink> sink;
};

// Never destroyed: a service may log from a static destructor, after a
// holder with static storage would be gone.
SinkHolder& Holder() {
  static SinkHolder* holder = new SinkHolder;
  return *holder;
}

}  // namespace

void SetLogSink(LogSink sink) {
  std::shared_ptr<const LogSink> next;
  if (sink) next = std::make_shared<const LogSink>(std::move(sink));
  SinkHolder& h = Holder();
  std::lock_guard<std::mutex> lock(h.mu);
  h.sink = std::move(next);
}

void Log(LogSeverity severity, absl::string_view message) {
  std::shared_ptr<const LogSink> sink;
  {
    SinkHolder& h = Holder();
    std::lock_guard<std::mutex> lock(h.mu);
    sink = h.sink;
  }
  if (sink) {
    (*sink)(severity, message);
  } else {
    WriteToStderr(severity, message);
  }
}

std::string DefaultLogLine(absl::string_view message) {
  return absl::StrCat(program_invocation_short_name, ": ", message, "\n");
}

const char* LogSeverityName(LogSeverity severity) {
  switch (severity) {
    case LogSeverity::kInfo:
      return "info";
    case LogSeverity::kWarning:
      return "warning";
    case LogSeverity::kError:
      return "error";
  }
  return "unknown";
}

}  // namespace corral::worker
