#include "tests/worker/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace corral::testworker {
namespace {

int g_fd = -1;
sockaddr_un g_addr{};
socklen_t g_addr_len = 0;

}  // namespace

void NotifyInit() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  size_t len = std::strlen(path);
  if (len >= sizeof g_addr.sun_path) {
    std::fprintf(stderr, "test-worker: NOTIFY_SOCKET too long\n");
    return;
  }
  g_addr.sun_family = AF_UNIX;
  std::memcpy(g_addr.sun_path, path, len);
  // "@name" is the abstract namespace: a leading NUL and no terminator.
  if (path[0] == '@') g_addr.sun_path[0] = '\0';
  g_addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len +
                                      (path[0] == '@' ? 0 : 1));
  g_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (g_fd < 0) std::perror("test-worker: notify socket");
}

bool Notify(const std::string& message) {
  if (g_addr_len == 0) return true;
  if (g_fd < 0) return false;
  ssize_t n = sendto(g_fd, message.data(), message.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&g_addr), g_addr_len);
  if (n == static_cast<ssize_t>(message.size())) return true;
  std::fprintf(stderr, "test-worker: notify '%s' failed: %s\n", message.c_str(),
               std::strerror(errno));
  return false;
}

long WatchdogUsec() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (usec == nullptr) return 0;
  const char* pid = std::getenv("WATCHDOG_PID");
  if (pid != nullptr && std::strtol(pid, nullptr, 10) != getpid()) return 0;
  long v = std::strtol(usec, nullptr, 10);
  return v > 0 ? v : 0;
}

}  // namespace corral::testworker
