// Fuzzes ParseIpcMessage (agent/supervisor/ipc_message.h): the lines a Node
// worker (or anything holding NODE_CHANNEL_FD) writes on its IPC channel.
// Invariants: a status text stays within kMaxNotifyMessage; an accepted
// corral message written back as the canonical JSON line parses to the same
// message; a line that is not JSON is always an error.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "agent/supervisor/ipc_message.h"
#include "common/json.h"
#include "tests/fuzz/fuzz_check.h"

namespace corral::agent {
namespace {

std::string Canonical(const NotifyMessage& m) {
  if (m.status) {
    return absl::StrCat(R"({"corral":"status","text":)",
                        common::JsonQuote(*m.status), "}");
  }
  if (m.watchdog) return R"({"corral":"watchdog"})";
  if (m.stopping) return R"({"corral":"stopping"})";
  return R"({"corral":"ready"})";
}

void Check(std::string_view in) {
  absl::StatusOr<std::optional<NotifyMessage>> m = ParseIpcMessage(in);
  if (!common::IsJsonValue(absl::string_view(in.data(), in.size()))) {
    FUZZ_CHECK(!m.ok(),
               "a line that is not JSON was accepted: ", fuzz::Shown(in));
    return;
  }
  if (!m.ok() || !m->has_value()) return;
  const NotifyMessage& msg = **m;
  const int verbs =
      msg.ready + msg.watchdog + msg.stopping + msg.status.has_value();
  FUZZ_CHECK(verbs == 1, "one line gave ", verbs, " verbs: ", fuzz::Shown(in));
  if (msg.status) {
    FUZZ_CHECK(msg.status->size() <= kMaxNotifyMessage, "status of ",
               msg.status->size(), " bytes accepted");
  }
  const std::string again = Canonical(msg);
  absl::StatusOr<std::optional<NotifyMessage>> m2 = ParseIpcMessage(again);
  FUZZ_CHECK(m2.ok() && m2->has_value(),
             "canonical line refused: ", fuzz::Shown(again));
  const NotifyMessage& msg2 = **m2;
  FUZZ_CHECK(msg2.ready == msg.ready && msg2.watchdog == msg.watchdog &&
                 msg2.stopping == msg.stopping && msg2.status == msg.status,
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
