#include "tests/worker/http.h"

#include <strings.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>

namespace corral::testworker {
namespace {

constexpr size_t kMaxHeaderBytes = 16 * 1024;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string UrlDecode(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 &&
               HexValue(in[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

void ParseTarget(const std::string& target, Request& request) {
  size_t q = target.find('?');
  request.path = target.substr(0, q);
  if (q == std::string::npos) return;
  std::string rest = target.substr(q + 1);
  size_t start = 0;
  while (start <= rest.size()) {
    size_t end = rest.find('&', start);
    if (end == std::string::npos) end = rest.size();
    std::string pair = rest.substr(start, end - start);
    size_t eq = pair.find('=');
    if (!pair.empty()) {
      request.query[UrlDecode(pair.substr(0, eq))] =
          eq == std::string::npos ? "" : UrlDecode(pair.substr(eq + 1));
    }
    start = end + 1;
  }
}

// Parses the request line and the headers we care about. Returns the
// Content-Length (0 when absent) or -1 on a malformed request.
long ParseHead(const std::string& head, Request& request) {
  size_t eol = head.find("\r\n");
  std::string line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) return -1;
  request = Request{};
  request.method = line.substr(0, sp1);
  request.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  ParseTarget(request.target, request);
  request.keep_alive = line.substr(sp2 + 1) != "HTTP/1.0";
  long content_length = 0;
  while (eol != std::string::npos && eol + 2 < head.size()) {
    size_t next = head.find("\r\n", eol + 2);
    std::string header = head.substr(eol + 2, next - eol - 2);
    eol = next;
    size_t colon = header.find(':');
    if (colon == std::string::npos) continue;
    std::string name = header.substr(0, colon);
    std::string value = header.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (strcasecmp(name.c_str(), "Connection") == 0) {
      if (strcasecmp(value.c_str(), "close") == 0) request.keep_alive = false;
      if (strcasecmp(value.c_str(), "keep-alive") == 0)
        request.keep_alive = true;
    } else if (strcasecmp(name.c_str(), "Content-Length") == 0) {
      content_length = std::strtol(value.c_str(), nullptr, 10);
    }
  }
  return content_length;
}

// Appends more bytes from `fd` to `buffer`.
ReadResult Fill(int fd, std::string& buffer) {
  char chunk[4096];
  for (;;) {
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer.append(chunk, static_cast<size_t>(n));
      return ReadResult::kOk;
    }
    if (n == 0) return ReadResult::kClosed;
    if (errno != EINTR) return ReadResult::kError;
  }
}

}  // namespace

ReadResult ReadRequest(int fd, std::string& buffer, Request& request) {
  size_t end;
  while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (buffer.size() > kMaxHeaderBytes) return ReadResult::kError;
    ReadResult r = Fill(fd, buffer);
    if (r != ReadResult::kOk) return buffer.empty() ? r : ReadResult::kError;
  }
  long body = ParseHead(buffer.substr(0, end), request);
  if (body < 0) return ReadResult::kError;
  size_t total = end + 4 + static_cast<size_t>(body);
  while (buffer.size() < total) {
    if (Fill(fd, buffer) != ReadResult::kOk) return ReadResult::kError;
  }
  buffer.erase(0, total);
  return ReadResult::kOk;
}

bool WriteResponse(int fd, int status, const std::string& body,
                   bool keep_alive) {
  const char* reason = status == 200   ? "OK"
                       : status == 404 ? "Not Found"
                                       : "Error";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                    "\r\nContent-Type: text/plain\r\nContent-Length: " +
                    std::to_string(body.size()) +
                    "\r\nConnection: " + (keep_alive ? "keep-alive" : "close") +
                    "\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < out.size()) {
    // MSG_NOSIGNAL: a vanished client must not kill the worker with SIGPIPE.
    ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

long QueryInt(const Request& request, const std::string& key, long fallback) {
  auto it = request.query.find(key);
  if (it == request.query.end() || it->second.empty()) return fallback;
  char* end = nullptr;
  long v = std::strtol(it->second.c_str(), &end, 10);
  return *end == '\0' ? v : fallback;
}

}  // namespace corral::testworker
