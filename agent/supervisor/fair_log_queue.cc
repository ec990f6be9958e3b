#include "agent/supervisor/fair_log_queue.h"

#include <utility>

namespace corral::agent {

bool FairLogQueue::Push(int source, std::string line) {
  const size_t size = line.size();
  while (bytes_ + size > max_bytes_) {
    if (queue_.empty() || size > max_bytes_) {
      ++dropped_[source];
      return false;
    }
    const int loudest = Loudest();
    // Taking room from a source that would then have no more queued than
    // `source` is not fair: `source` is the loud one, and it loses.
    if (loudest == source || bytes_of(source) + size >= bytes_of(loudest)) {
      ++dropped_[source];
      return false;
    }
    DropNewest(loudest);
  }
  queue_.push_back({source, std::move(line)});
  Source& s = sources_[source];
  s.items.push_back(std::prev(queue_.end()));
  s.bytes += size;
  bytes_ += size;
  return true;
}

std::string FairLogQueue::PopBatch(size_t max_bytes) {
  std::string batch;
  while (!queue_.empty() && (batch.empty() || batch.size() < max_bytes)) {
    Item& item = queue_.front();
    auto it = sources_.find(item.source);
    it->second.items.pop_front();  // FIFO: its oldest is the queue's oldest
    it->second.bytes -= item.line.size();
    if (it->second.items.empty()) sources_.erase(it);
    bytes_ -= item.line.size();
    batch += item.line;
    queue_.pop_front();
  }
  return batch;
}

size_t FairLogQueue::bytes_of(int source) const {
  auto it = sources_.find(source);
  return it == sources_.end() ? 0 : it->second.bytes;
}

std::map<int, uint64_t> FairLogQueue::TakeDropped() {
  return std::exchange(dropped_, {});
}

int FairLogQueue::Loudest() const {
  // Only when the queue is full; there are as many sources as workers.
  int loudest = sources_.begin()->first;
  size_t most = 0;
  for (const auto& [source, s] : sources_) {
    if (s.bytes > most) {
      most = s.bytes;
      loudest = source;
    }
  }
  return loudest;
}

void FairLogQueue::DropNewest(int source) {
  auto it = sources_.find(source);
  Queue::iterator item = it->second.items.back();
  it->second.items.pop_back();
  it->second.bytes -= item->line.size();
  bytes_ -= item->line.size();
  if (it->second.items.empty()) sources_.erase(it);
  queue_.erase(item);
  ++dropped_[source];
}

}  // namespace corral::agent
