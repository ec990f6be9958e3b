// Fuzzes ParseNotifyMessage (agent/supervisor/notify_message.h): the
// datagrams any process that can reach $NOTIFY_SOCKET may send.
// Invariants: an accepted message fits the limits the parser promises
// (size, no NUL, EXTEND_TIMEOUT_USEC within [0, kMaxExtendTimeout]), and
// the message written back as a datagram parses to the same message.
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "agent/supervisor/notify_message.h"
#include "tests/fuzz/fuzz_check.h"

namespace corral::agent {
namespace {

std::string Format(const NotifyMessage& m) {
  std::string out;
  if (m.ready) out += "READY=1\n";
  if (m.stopping) out += "STOPPING=1\n";
  if (m.watchdog) out += "WATCHDOG=1\n";
  if (m.status) absl::StrAppend(&out, "STATUS=", *m.status, "\n");
  if (m.extend_timeout) {
    absl::StrAppend(
        &out, "EXTEND_TIMEOUT_USEC=",
        std::chrono::duration_cast<std::chrono::microseconds>(*m.extend_timeout)
            .count(),
        "\n");
  }
  return out;
}

void Check(std::string_view in) {
  absl::StatusOr<NotifyMessage> m = ParseNotifyMessage(in);
  if (!m.ok()) {
    FUZZ_CHECK(!m.status().message().empty(), "an error without a message");
    return;
  }
  FUZZ_CHECK(in.size() <= kMaxNotifyMessage, "accepted ", in.size(), " bytes");
  FUZZ_CHECK(in.find('\0') == std::string_view::npos, "accepted a NUL");
  if (m->status) {
    FUZZ_CHECK(m->status->find('\n') == std::string::npos,
               "STATUS holds a newline");
  }
  if (m->extend_timeout) {
    FUZZ_CHECK(*m->extend_timeout >= Duration::zero() &&
                   *m->extend_timeout <= kMaxExtendTimeout,
               "EXTEND_TIMEOUT_USEC out of range in ", fuzz::Shown(in));
  }
  const std::string again = Format(*m);
  absl::StatusOr<NotifyMessage> m2 = ParseNotifyMessage(again);
  FUZZ_CHECK(m2.ok(),
             "the message written back is refused: ", fuzz::Shown(again), ": ",
             m2.status().ToString());
  FUZZ_CHECK(m2->ready == m->ready && m2->stopping == m->stopping &&
                 m2->watchdog == m->watchdog && m2->status == m->status &&
                 m2->extend_timeout == m->extend_timeout,
             "round trip changed ", fuzz::Shown(in), " into ",
             fuzz::Shown(again));
}

}  // namespace
}  // namespace corral::agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  corral::agent::Check(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
