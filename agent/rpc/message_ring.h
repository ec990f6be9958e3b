// The recent messages every following stream (WatchEvents, StreamLogs -f)
// reads from: one shared, refcounted copy of each message, however many
// streams follow, bounded by a byte budget for all of them together.
//
// Each stream keeps only a cursor (the sequence number of the next message
// it wants). Appending past the budget evicts the oldest messages; a stream
// whose cursor points at an evicted message has fallen behind, and its next
// read says how many it skipped. A stream that never reads therefore costs
// nothing here: the budget is the bound, not the number of streams.
//
// Not thread-safe: FollowRing adds the lock. Pure logic, unit-tested.
#ifndef CORRAL_AGENT_RPC_MESSAGE_RING_H_
#define CORRAL_AGENT_RPC_MESSAGE_RING_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>

namespace corral::agent {

template <typename T>
class MessageRing {
 public:
  using Ptr = std::shared_ptr<const T>;
  struct Entry {
    Ptr item;
    uint64_t seq = 0;      // this message's sequence number
    uint64_t skipped = 0;  // evicted messages between the cursor and seq
  };

  // `max_bytes` > 0: the budget, as counted by Append's `bytes`.
  explicit MessageRing(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Adds `item`, which costs `bytes`, and evicts the oldest messages while
  // over the budget (the newest always stays). Returns its sequence number.
  uint64_t Append(Ptr item, size_t bytes) {
    slots_.push_back({std::move(item), bytes});
    bytes_ += bytes;
    while (bytes_ > max_bytes_ && slots_.size() > 1) {
      bytes_ -= slots_.front().bytes;
      slots_.pop_front();
      ++begin_seq_;
      ++evicted_;
    }
    return end_seq() - 1;
  }

  // The message at `cursor`, or the oldest one kept when `cursor` was
  // evicted (with `skipped` set); nullopt when `cursor` is past the newest.
  std::optional<Entry> Read(uint64_t cursor) const {
    if (slots_.empty() || cursor >= end_seq()) return std::nullopt;
    const uint64_t seq = cursor < begin_seq_ ? begin_seq_ : cursor;
    return Entry{slots_[seq - begin_seq_].item, seq, seq - cursor};
  }

  // The cursor from which the last `n` kept messages that `match` are
  // read (fewer when fewer are kept). Scans back from the newest.
  uint64_t TailCursor(size_t n,
                      const std::function<bool(const T&)>& match) const {
    uint64_t cursor = end_seq();
    for (size_t found = 0; found < n && cursor > begin_seq_;) {
      --cursor;
      if (match(*slots_[cursor - begin_seq_].item)) ++found;
    }
    return cursor;
  }

  // The sequence number the next Append gets.
  uint64_t end_seq() const { return begin_seq_ + slots_.size(); }
  uint64_t begin_seq() const { return begin_seq_; }
  size_t bytes() const { return bytes_; }
  size_t size() const { return slots_.size(); }
  size_t max_bytes() const { return max_bytes_; }
  // Messages evicted so far.
  uint64_t evicted() const { return evicted_; }

 private:
  struct Slot {
    Ptr item;
    size_t bytes;
  };

  const size_t max_bytes_;
  std::deque<Slot> slots_;
  uint64_t begin_seq_ = 1;  // 0 is never a message: a cursor of 0 is "none"
  size_t bytes_ = 0;
  uint64_t evicted_ = 0;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_RPC_MESSAGE_RING_H_
