#include "agent/os/reuseport.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "agent/os/errors.h"
#include "agent/os/fd.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

namespace corral::agent {

static_assert(sizeof(BpfInsn) == sizeof(sock_filter));
static_assert(offsetof(BpfInsn, code) == offsetof(sock_filter, code));
static_assert(offsetof(BpfInsn, jt) == offsetof(sock_filter, jt));
static_assert(offsetof(BpfInsn, jf) == offsetof(sock_filter, jf));
static_assert(offsetof(BpfInsn, k) == offsetof(sock_filter, k));
static_assert(static_cast<uint32_t>(SKF_NET_OFF) == 0xfff00000u);

absl::StatusOr<TcpListener> OpenReuseportMember(const std::string& host,
                                                int port, bool probe) {
  const std::string what = absl::StrCat("listen on tcp://", host, ":", port);
  if (probe && port != 0) {
    TcpListenOptions plain;
    plain.backlog = 1;
    absl::StatusOr<TcpListener> p = OpenTcpListener(host, port, plain, what);
    if (!p.ok()) return p.status();
    CloseFd(p->fd);
  }
  TcpListenOptions options;
  options.reuseport = true;
  return OpenTcpListener(host, port, options, what);
}

absl::Status AttachSteeringProgram(int fd,
                                   const std::vector<BpfInsn>& program) {
  sock_fprog fprog;
  fprog.len = static_cast<unsigned short>(program.size());
  fprog.filter =
      reinterpret_cast<sock_filter*>(const_cast<BpfInsn*>(program.data()));
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog,
                 sizeof(fprog)) != 0) {
    return ErrnoStatus(errno, "SO_ATTACH_REUSEPORT_CBPF");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> AcceptQueueLength(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) {
    return ErrnoStatus(errno, "TCP_INFO");
  }
  // For a listener the kernel reports the accept backlog in tcpi_unacked.
  return static_cast<int>(info.tcpi_unacked);
}

bool EnableTcpMigrateReq() {
  constexpr const char* kPath = "/proc/sys/net/ipv4/tcp_migrate_req";
  const int fd = open(kPath, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char c = '0';
  const bool on = read(fd, &c, 1) == 1 && c == '1';
  close(fd);
  if (on) return true;
  const int wfd = open(kPath, O_WRONLY | O_CLOEXEC);
  if (wfd < 0) return false;
  const bool ok = write(wfd, "1", 1) == 1;
  close(wfd);
  return ok;
}

}  // namespace corral::agent
