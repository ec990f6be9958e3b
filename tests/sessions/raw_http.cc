#include "tests/sessions/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace corral::worker {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

// Parses a complete response at the front of `buf`; nullopt-like empty
// status 0 when more bytes are needed.
absl::StatusOr<size_t> ParseResponse(const std::string& buf, RawResponse* out) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::string_view(buf).substr(0, end), "\r\n");
  std::vector<absl::string_view> first =
      absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (first.size() < 2 || !absl::SimpleAtoi(first[1], &out->status)) {
    return absl::DataLossError(absl::StrCat("bad status line: ", lines[0]));
  }
  out->version = std::string(first[0]);
  out->headers.clear();
  for (size_t i = 1; i < lines.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(lines[i], absl::MaxSplits(':', 1));
    out->headers[absl::AsciiStrToLower(kv.first)] =
        std::string(absl::StripAsciiWhitespace(kv.second));
  }
  size_t length = 0;
  auto cl = out->headers.find("content-length");
  if (cl == out->headers.end() || !absl::SimpleAtoi(cl->second, &length)) {
    return absl::DataLossError("response without a Content-Length");
  }
  size_t total = end + 4 + length;
  if (buf.size() < total) return 0;
  out->body = buf.substr(end + 4, length);
  return total;
}

int Millis(absl::Duration d) {
  return static_cast<int>(std::max<int64_t>(
      0, absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)))));
}

}  // namespace

std::string RawResponse::connection() const {
  auto it = headers.find("connection");
  return it == headers.end() ? "" : absl::AsciiStrToLower(it->second);
}

RawHttpClient::~RawHttpClient() { Close(); }

void RawHttpClient::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  buffer_.clear();
}

absl::Status RawHttpClient::Connect(int port) {
  Close();
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrCat("connect 127.0.0.1:", port));
  }
  return absl::OkStatus();
}

absl::Status RawHttpClient::Send(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n =
        send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("send");
    done += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<PeerEnd> RawHttpClient::Fill(absl::Duration timeout) {
  pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
  int r = poll(&p, 1, Millis(timeout));
  if (r < 0) return Errno("poll");
  if (r == 0) return PeerEnd::kOpen;
  char chunk[4096];
  ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
  if (n > 0) {
    buffer_.append(chunk, n);
    return PeerEnd::kOpen;
  }
  if (n == 0) return PeerEnd::kEof;
  if (errno == ECONNRESET || errno == EPIPE) return PeerEnd::kReset;
  return Errno("recv");
}

absl::StatusOr<RawResponse> RawHttpClient::Read(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    RawResponse res;
    absl::StatusOr<size_t> used = ParseResponse(buffer_, &res);
    if (!used.ok()) return used.status();
    if (*used > 0) {
      buffer_.erase(0, *used);
      return res;
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no complete response within ", absl::FormatDuration(timeout), " (",
          buffer_.size(), " bytes so far)"));
    }
    absl::StatusOr<PeerEnd> end = Fill(left);
    if (!end.ok()) return end.status();
    if (*end != PeerEnd::kOpen) {
      return absl::UnavailableError(
          absl::StrCat(*end == PeerEnd::kEof ? "EOF" : "reset", " after ",
                       buffer_.size(), " bytes of a response"));
    }
  }
}

absl::StatusOr<PeerEnd> RawHttpClient::WaitEnd(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (buffer_.empty()) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return PeerEnd::kOpen;
    absl::StatusOr<PeerEnd> end = Fill(left);
    if (!end.ok() || *end != PeerEnd::kOpen) return end;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("unexpected bytes from the server: ", buffer_));
}

std::string RawGet(const std::string& path, const std::string& version,
                   const std::string& extra_headers) {
  return absl::StrCat("GET ", path, " HTTP/", version, "\r\nHost: t\r\n",
                      extra_headers, "\r\n");
}

}  // namespace corral::worker
