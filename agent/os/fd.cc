#include "agent/os/fd.h"

#include <unistd.h>

#include <array>
#include <cerrno>

namespace corral::agent {

void CloseFd(int fd) {
  if (fd >= 0) close(fd);
}

bool ReadAvailable(int fd, std::string* out) {
  std::array<char, 64 * 1024> chunk;
  for (;;) {
    const ssize_t n = read(fd, chunk.data(), chunk.size());
    if (n > 0) {
      out->append(chunk.data(), static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

}  // namespace corral::agent
