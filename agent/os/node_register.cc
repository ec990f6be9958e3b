#include "agent/os/node_register.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace corral::agent {
namespace {

absl::Status Bad(absl::string_view value, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid --node-register value '", value, "': ", why,
      " (give auto, off, or the path of @corral/node's register.js)"));
}

// A readable regular file (the worker's node opens it as the agent's uid
// or a lower one; readable here is the check we can make).
absl::Status CheckFile(const std::string& path, absl::string_view value) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Bad(value, strerror(errno));
  if (!S_ISREG(st.st_mode)) return Bad(value, "not a regular file");
  if (access(path.c_str(), R_OK) != 0) return Bad(value, strerror(errno));
  return absl::OkStatus();
}

// The installed copy beside /proc/self/exe, or "" when there is none.
std::string BesideAgent() {
  std::error_code ec;
  const std::filesystem::path exe =
      std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const std::filesystem::path candidate =
      (exe.parent_path() / kNodeRegisterBesideAgent).lexically_normal();
  struct stat st;
  if (stat(candidate.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
  return candidate.string();
}

}  // namespace

absl::StatusOr<std::string> ResolveNodeRegister(absl::string_view value) {
  if (value == "auto") {
    std::string installed = BesideAgent();
    return installed.empty() ? std::string(kNodeRegisterModule) : installed;
  }
  if (value.empty()) return Bad(value, "empty");
  std::error_code ec;
  const std::filesystem::path path =
      std::filesystem::absolute(std::string(value), ec).lexically_normal();
  if (ec) return Bad(value, ec.message());
  if (absl::Status s = CheckFile(path.string(), value); !s.ok()) return s;
  return path.string();
}

}  // namespace corral::agent
