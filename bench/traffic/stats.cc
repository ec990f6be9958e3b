#include "bench/traffic/stats.h"

#include <algorithm>
#include <bit>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace corral::bench {

const char* FailureKindName(FailureKind kind) {
  switch (kind) {
    case FailureKind::kRefused:
      return "refused";
    case FailureKind::kReset:
      return "reset";
    case FailureKind::kEofIdle:
      return "eof_idle";
    case FailureKind::kEofMid:
      return "eof_mid";
    case FailureKind::kEofNew:
      return "eof_new";
    case FailureKind::kTimeout:
      return "timeout";
    case FailureKind::kNon2xx:
      return "non2xx";
    case FailureKind::kOther:
      return "other";
  }
  return "other";
}

int LatencyHistogram::Index(uint64_t micros) {
  if (micros < kSub) return static_cast<int>(micros);
  // Shift so that the value lands in [kSub, 2*kSub): `shift` is the power
  // of two of the bucket width.
  const int shift = std::bit_width(micros) - 7;
  const int index =
      kSub + shift * kSub + static_cast<int>((micros >> shift) - kSub);
  return std::min(index, kBuckets - 1);
}

double LatencyHistogram::Midpoint(int index) {
  if (index < kSub) return index;
  const int shift = (index - kSub) / kSub;
  const uint64_t low = static_cast<uint64_t>((index - kSub) % kSub + kSub)
                       << shift;
  return static_cast<double>(low) + static_cast<double>(1ULL << shift) / 2;
}

void LatencyHistogram::Record(uint64_t micros) {
  buckets_[Index(micros)]++;
  count_++;
  max_ = std::max(max_, micros);
  sum_ += static_cast<double>(micros);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double LatencyHistogram::mean() const {
  return count_ == 0 ? 0 : sum_ / static_cast<double>(count_);
}

double LatencyHistogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  // The smallest bucket whose cumulative count reaches ceil(q * count).
  const uint64_t rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(q * static_cast<double>(count_) + 0.999999));
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      return std::min(Midpoint(i), static_cast<double>(max_));
    }
  }
  return static_cast<double>(max_);
}

void Stats::AddFailure(FailureEvent event) {
  failures[static_cast<int>(event.kind)]++;
  events.push_back(std::move(event));
}

void Stats::AddSuccess(double now_s, double start_s, double tick_s,
                       uint64_t micros) {
  ok++;
  latency.Record(micros);
  const auto tick =
      static_cast<size_t>(std::max(0.0, now_s - start_s) / tick_s);
  if (tick >= ok_per_tick.size()) ok_per_tick.resize(tick + 1, 0);
  ok_per_tick[tick]++;
}

void Stats::Merge(const Stats& other) {
  ok += other.ok;
  for (int i = 0; i < kFailureKinds; ++i) failures[i] += other.failures[i];
  latency.Merge(other.latency);
  for (const auto& [id, count] : other.workers) {
    workers[id].requests += count.requests;
    workers[id].connections += count.connections;
  }
  events.insert(events.end(), other.events.begin(), other.events.end());
  if (other.ok_per_tick.size() > ok_per_tick.size()) {
    ok_per_tick.resize(other.ok_per_tick.size(), 0);
  }
  for (size_t i = 0; i < other.ok_per_tick.size(); ++i) {
    ok_per_tick[i] += other.ok_per_tick[i];
  }
}

namespace {

std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string EventJson(const FailureEvent& e) {
  return absl::StrFormat(
      R"({"start":%.6f,"fail":%.6f,"kind":"%s","reused":%s,"rst":%s,)"
      R"("worker":%s,"detail":%s})",
      e.start_s, e.fail_s, FailureKindName(e.kind), e.reused ? "true" : "false",
      e.rst ? "true" : "false", Quote(e.worker), Quote(e.detail));
}

}  // namespace

std::string ToJson(const RunInfo& info, const Stats& stats) {
  std::vector<FailureEvent> events = stats.events;
  std::sort(events.begin(), events.end(),
            [](const FailureEvent& a, const FailureEvent& b) {
              return a.start_s < b.start_s;
            });
  const double seconds = std::max(1e-9, info.end_s - info.start_s);
  uint64_t failed = 0;
  std::vector<std::string> kinds;
  for (int i = 0; i < kFailureKinds; ++i) {
    failed += stats.failures[i];
    kinds.push_back(absl::StrFormat(
        "\"%s\":%d", FailureKindName(static_cast<FailureKind>(i)),
        stats.failures[i]));
  }
  std::vector<std::string> workers;
  for (const auto& [id, count] : stats.workers) {
    workers.push_back(
        absl::StrFormat(R"({"id":%s,"requests":%d,"connections":%d})",
                        Quote(id), count.requests, count.connections));
  }
  std::vector<std::string> event_json;
  for (const FailureEvent& e : events) event_json.push_back(EventJson(e));
  const LatencyHistogram& h = stats.latency;
  return absl::StrCat(
      "{",
      absl::StrFormat(
          R"("url":%s,"connections":%d,"threads":%d,"start":%.6f,"end":%.6f,)"
          R"("drain_start":%.6f,"seconds":%.3f,"ok":%d,"failed":%d,)"
          R"("rps":%.1f,)",
          Quote(info.url), info.connections, info.threads, info.start_s,
          info.end_s, info.drain_s, seconds, stats.ok, failed,
          static_cast<double>(stats.ok) / seconds),
      absl::StrFormat(
          R"("latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"p999":%.3f,)"
          R"("max":%.3f,"mean":%.3f},)",
          h.Quantile(0.5) / 1e3, h.Quantile(0.9) / 1e3, h.Quantile(0.99) / 1e3,
          h.Quantile(0.999) / 1e3, static_cast<double>(h.max()) / 1e3,
          h.mean() / 1e3),
      "\"failures\":{", absl::StrJoin(kinds, ","), "},", "\"workers\":[",
      absl::StrJoin(workers, ","), "],",
      absl::StrFormat("\"tick\":%.3f,\"ok_per_tick\":[", info.tick_s),
      absl::StrJoin(stats.ok_per_tick, ","), "],", "\"events\":[",
      absl::StrJoin(event_json, ",\n"), "]}\n");
}

}  // namespace corral::bench
