#include "agent/core/worker_output.h"

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "agent/os/fd.h"

namespace corral::agent {

// --- LineSplitter -----------------------------------------------------------

void LineSplitter::Feed(std::string_view data, const Emit& emit) {
  pending_.append(data);
  size_t start = 0;
  for (;;) {
    const size_t nl = pending_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(pending_.data() + start, nl - start);
    start = nl + 1;
    if (ipc_) {
      emit(line, false);
      continue;
    }
    while (line.size() > kMaxLine) {
      emit(line.substr(0, kMaxLine), true);
      line.remove_prefix(kMaxLine);
    }
    emit(line, false);
  }
  if (ipc_ && pending_.size() - start > kMaxLine) {
    pending_.clear();  // not a JSON line we will ever use
    start = 0;
  }
  pending_.erase(0, start);
  if (ipc_) return;
  while (pending_.size() > kMaxLine) {
    emit(std::string_view(pending_).substr(0, kMaxLine), true);
    pending_.erase(0, kMaxLine);
  }
}

void LineSplitter::Finish(const Emit& emit) {
  if (!ipc_ && !pending_.empty()) emit(pending_, false);
  pending_.clear();
}

// --- WorkerOutput -----------------------------------------------------------

struct WorkerOutput::Reader {
  Reader(boost::asio::io_context& io, int fd, LineSource src, bool is_ipc)
      : stream(io, fd), source(src), ipc(is_ipc), lines(is_ipc) {}
  boost::asio::posix::stream_descriptor stream;  // owns the fd
  LineSource source;
  bool ipc;  // Node's IPC channel: JSON lines, not output
  LineSplitter lines;
  std::array<char, 64 * 1024> chunk;
  std::list<std::unique_ptr<Reader>>::iterator self;
};

WorkerOutput::WorkerOutput(boost::asio::io_context* io, Logger* logger,
                           IpcLineFn on_ipc_line)
    : io_(io), logger_(logger), on_ipc_line_(std::move(on_ipc_line)) {}

WorkerOutput::~WorkerOutput() = default;

void WorkerOutput::Watch(const SpawnRequest& request, pid_t pid,
                         const WorkerPipes& pipes) {
  Start(pipes.stdout_fd, {request.slot, request.generation, pid, "stdout"},
        false);
  Start(pipes.stderr_fd, {request.slot, request.generation, pid, "stderr"},
        false);
  if (pipes.ipc_fd >= 0) {
    Start(pipes.ipc_fd, {request.slot, request.generation, pid, "ipc"}, true);
  }
}

void WorkerOutput::Start(int fd, const LineSource& source, bool ipc) {
  readers_.push_back(std::make_unique<Reader>(*io_, fd, source, ipc));
  Reader* reader = readers_.back().get();
  reader->self = std::prev(readers_.end());
  Read(reader);
}

void WorkerOutput::Read(Reader* r) {
  r->stream.async_read_some(
      boost::asio::buffer(r->chunk),
      [this, r](boost::system::error_code ec, size_t n) {
        if (ec) return Finish(r);  // EOF: every writer closed it
        r->lines.Feed(std::string_view(r->chunk.data(), n),
                      [this, r](std::string_view line, bool cont) {
                        if (r->ipc) return on_ipc_line_(r->source.pid, line);
                        OnLine(r->source, line, cont);
                      });
        Read(r);
      });
}

void WorkerOutput::Finish(Reader* r) {
  r->lines.Finish([this, r](std::string_view line, bool cont) {
    OnLine(r->source, line, cont);
  });
  readers_.erase(r->self);
}

void WorkerOutput::DrainSync() {
  for (auto& r : readers_) {
    // IPC messages after the end change nothing.
    if (r->ipc) continue;
    std::string rest;
    ReadAvailable(r->stream.native_handle(), &rest);
    auto emit = [this, &r](std::string_view line, bool cont) {
      OnLine(r->source, line, cont);
    };
    r->lines.Feed(rest, emit);
    r->lines.Finish(emit);
  }
  readers_.clear();
}

void WorkerOutput::OnLine(const LineSource& source, std::string_view text,
                          bool cont) {
  logger_->WorkerLine(source, text, cont);
  ++seq_;
  if (observers_.empty()) return;
  auto rec = std::make_shared<LogRecord>();
  rec->seq = seq_;
  rec->ts = TimestampNow();
  rec->slot = source.slot;
  rec->generation = source.generation;
  rec->pid = source.pid;
  rec->stream = source.stream;
  rec->text = std::string(text);
  rec->cont = cont;
  const LogRecordPtr shared = std::move(rec);
  // A copy of the ids: an observer may remove itself (or another) while
  // called.
  std::vector<int> ids;
  for (const auto& [id, fn] : observers_) ids.push_back(id);
  for (int id : ids) {
    if (auto it = observers_.find(id); it != observers_.end()) {
      it->second(shared);
    }
  }
}

void WorkerOutput::AddObserver(int id,
                               std::function<void(const LogRecordPtr&)> fn) {
  observers_[id] = std::move(fn);
}

void WorkerOutput::RemoveObserver(int id) { observers_.erase(id); }

}  // namespace corral::agent
