// The agent's log lines waiting for stdout, bounded in bytes and shared
// fairly between their sources (each worker slot, and the agent itself).
//
// When a line does not fit, room is made by dropping from the source with
// the most bytes queued: a worker writing 50 MB/s loses its own lines, and a
// quiet worker's lines get in (issue 12, #7). The loudest source's newest
// queued lines go first, so what it already queued stays continuous. Lines
// dropped are counted per source.
//
// Pure logic, not thread-safe: LogWriter adds the lock.
#ifndef CORRAL_AGENT_SUPERVISOR_FAIR_LOG_QUEUE_H_
#define CORRAL_AGENT_SUPERVISOR_FAIR_LOG_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <string>

namespace corral::agent {

class FairLogQueue {
 public:
  // The source of the agent's own lines (events); workers are their slot.
  static constexpr int kAgentSource = -1;

  // `max_bytes` > 0 bounds the bytes queued.
  explicit FairLogQueue(size_t max_bytes) : max_bytes_(max_bytes) {}
  FairLogQueue(const FairLogQueue&) = delete;
  FairLogQueue& operator=(const FairLogQueue&) = delete;

  // Queues `line` from `source`, dropping lines of the loudest source to
  // make room. Returns false when `line` itself was dropped: `source` is
  // (or would become) the loudest, or the line alone is over the bound.
  bool Push(int source, std::string line);
  // Removes the oldest lines, concatenated, up to about `max_bytes` (at
  // least one line when any is queued).
  std::string PopBatch(size_t max_bytes);

  bool empty() const { return queue_.empty(); }
  size_t bytes() const { return bytes_; }
  // Bytes queued from `source`.
  size_t bytes_of(int source) const;
  // Lines dropped per source since the last call; resets the counts.
  std::map<int, uint64_t> TakeDropped();

 private:
  struct Item {
    int source;
    std::string line;
  };
  using Queue = std::list<Item>;
  struct Source {
    size_t bytes = 0;
    std::deque<Queue::iterator> items;  // oldest first
  };

  // The source with the most bytes queued; queue_ must not be empty.
  int Loudest() const;
  // Drops `source`'s newest queued line.
  void DropNewest(int source);

  const size_t max_bytes_;
  Queue queue_;
  std::map<int, Source> sources_;
  size_t bytes_ = 0;
  std::map<int, uint64_t> dropped_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_FAIR_LOG_QUEUE_H_
