// Rejected notify datagrams, coalesced for the log: the first one from a
// sender is reported at once (with its reason); more from that sender
// within `interval` are only counted, and reported together when the
// interval is over ("N datagrams rejected from pid P in the last 1s:
// <first reason>"). A flood therefore costs at most one log line per sender
// per interval, instead of one per datagram.
//
// Pure logic: time is passed in. Loop thread only.
#ifndef CORRAL_AGENT_SUPERVISOR_REJECTION_COALESCER_H_
#define CORRAL_AGENT_SUPERVISOR_REJECTION_COALESCER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/supervisor/clock.h"

namespace corral::agent {

class RejectionCoalescer {
 public:
  // The sender of datagrams counted together once `max_senders` senders are
  // tracked in one interval (so a swarm of senders cannot grow the table).
  static constexpr int64_t kOtherSenders = -1;

  // What to log.
  struct Report {
    int64_t pid = 0;     // the sender, or kOtherSenders
    uint64_t count = 0;  // datagrams rejected in `window`
    std::string reason;  // why the first of them was rejected
    Duration window{};   // zero for the first datagram, reported at once
  };

  explicit RejectionCoalescer(Duration interval = std::chrono::seconds(1),
                              size_t max_senders = 256);

  // Counts a datagram from `pid` rejected at `now` for `reason`. Returns
  // the report to log now, if any: the first datagram of a sender, or the
  // datagrams of a sender whose interval is over.
  std::optional<Report> Reject(TimePoint now, int64_t pid,
                               std::string_view reason);
  // Reports the senders whose interval is over and who sent more since
  // their last report; forgets those who sent nothing. Call about once per
  // interval.
  std::vector<Report> Flush(TimePoint now);

  // Senders tracked now.
  size_t senders() const { return senders_.size(); }

 private:
  struct Window {
    TimePoint start;
    uint64_t pending = 0;  // rejected since the last report
    std::string reason;    // of the first pending one
  };
  // Starts a new interval after a report.
  static Report Close(int64_t pid, Window* w, TimePoint now);

  // Constant after construction.
  const Duration interval_;
  const size_t max_senders_;

  std::map<int64_t, Window> senders_;
};

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_REJECTION_COALESCER_H_
