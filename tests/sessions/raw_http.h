// A blocking HTTP/1.x client on a raw loopback TCP socket, for tests that
// must see exactly what a server puts on the wire: the Connection header of
// each response, pipelined answers in order, a FIN versus a reset, and when
// a connection closes. Every wait is bounded by a timeout; nothing retries.
//
// Not thread-safe: one client per test thread.
#ifndef CORRAL_TESTS_SESSIONS_RAW_HTTP_H_
#define CORRAL_TESTS_SESSIONS_RAW_HTTP_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace corral::worker {

struct RawResponse {
  std::string version;  // "HTTP/1.1"
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  // The Connection header in lower case ("" when absent).
  std::string connection() const;
};

// How a connection ended, as the client sees it.
enum class PeerEnd { kOpen, kEof, kReset };

class RawHttpClient {
 public:
  RawHttpClient() = default;
  ~RawHttpClient();
  RawHttpClient(const RawHttpClient&) = delete;
  RawHttpClient& operator=(const RawHttpClient&) = delete;

  // Connects to 127.0.0.1:port (the handshake completes in the kernel, so
  // the connection is in the server's accept queue on return).
  absl::Status Connect(int port);

  absl::Status Send(const std::string& bytes);

  // Reads one response (Content-Length framed), waiting up to `timeout`.
  // EOF or a reset before it is complete is an error saying which.
  absl::StatusOr<RawResponse> Read(absl::Duration timeout = absl::Seconds(5));

  // Waits up to `timeout` for the server to end the connection. Unread
  // response bytes are an error (they are not skipped).
  absl::StatusOr<PeerEnd> WaitEnd(absl::Duration timeout);

  void Close();

 private:
  // Appends what arrives within `timeout` to buffer_; kOpen when nothing did.
  absl::StatusOr<PeerEnd> Fill(absl::Duration timeout);

  int fd_ = -1;
  std::string buffer_;
};

// "GET <path> HTTP/<version>\r\nHost: t\r\n<extra>\r\n".
std::string RawGet(const std::string& path, const std::string& version = "1.1",
                   const std::string& extra_headers = "");

}  // namespace corral::worker

#endif  // CORRAL_TESTS_SESSIONS_RAW_HTTP_H_
