// What corral-loadgen counts: successes, every failure by kind with its time,
// latency, and which worker served each response and each connection.
//
// One Stats per client thread, touched only by that thread; the main thread
// merges them after every client thread has stopped.
#ifndef CORRAL_BENCH_TRAFFIC_STATS_H_
#define CORRAL_BENCH_TRAFFIC_STATS_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace corral::bench {

// How a request failed. The split matters: each kind has its own cause on
// the server side (see bench/traffic/README.md).
enum class FailureKind {
  kRefused,  // connect() got ECONNREFUSED: nothing listening
  kReset,    // RST on a new connection, or after part of the response
  kEofIdle,  // closed (FIN or RST) before any response byte, on a reused
             // keep-alive connection: the server closed an "idle" connection
             // while our next request was on its way
  kEofMid,   // FIN after part of the response
  kEofNew,   // FIN before any response byte on a new connection
  kTimeout,  // no complete response within --timeout (connect included)
  kNon2xx,   // a complete response with a status outside 200-299
  kOther,    // anything else (parse error, EADDRNOTAVAIL, ...)
};
inline constexpr int kFailureKinds = 8;
const char* FailureKindName(FailureKind kind);

// Log-linear latency histogram in microseconds: exact below 64 us, then 64
// buckets per power of two (error < 1.6 %). Mergeable, fixed memory.
class LatencyHistogram {
 public:
  void Record(uint64_t micros);
  void Merge(const LatencyHistogram& other);
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const;
  // The value at quantile q in [0, 1] (the bucket's midpoint), 0 if empty.
  double Quantile(double q) const;

 private:
  static constexpr int kSub = 64;
  static constexpr int kBuckets = kSub + 40 * kSub;
  static int Index(uint64_t micros);
  static double Midpoint(int index);

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
  double sum_ = 0;
};

// One failed request: when it was started and when it failed (seconds on
// CLOCK_MONOTONIC, the clock of Python's time.monotonic(), so the driver
// can place it in its own reload/kill/scale windows).
struct FailureEvent {
  double start_s = 0;
  double fail_s = 0;
  FailureKind kind = FailureKind::kOther;
  bool reused = false;  // the connection had served a response before
  bool rst = false;     // the close was a reset, not a FIN
  std::string worker;   // who served this connection before ("" if none)
  std::string detail;   // the error text, for kOther
};

struct WorkerCount {
  uint64_t requests = 0;     // successful responses it served
  uint64_t connections = 0;  // connections whose first response was its
};

struct Stats {
  uint64_t ok = 0;
  std::array<uint64_t, kFailureKinds> failures{};
  LatencyHistogram latency;  // successful requests only
  std::map<std::string, WorkerCount> workers;
  std::vector<FailureEvent> events;
  std::vector<uint32_t> ok_per_tick;  // successes per --tick since start

  void AddFailure(FailureEvent event);
  void AddSuccess(double now_s, double start_s, double tick_s, uint64_t micros);
  void Merge(const Stats& other);
};

// The whole run as one JSON object (see README.md for the fields).
struct RunInfo {
  std::string url;
  int connections = 0;
  int threads = 0;
  double tick_s = 0;
  double start_s = 0;
  double end_s = 0;
  double drain_s = 0;  // when drain mode began, 0 if never
};
std::string ToJson(const RunInfo& info, const Stats& stats);

}  // namespace corral::bench

#endif  // CORRAL_BENCH_TRAFFIC_STATS_H_
