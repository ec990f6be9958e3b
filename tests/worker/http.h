// Just enough HTTP/1.1 for the test worker: read one request from a blocking
// socket, answer it. Not a general parser: GET-style requests, headers up to
// 16 KiB, an optional Content-Length body that is read and discarded.
#ifndef CORRAL_TESTS_WORKER_HTTP_H_
#define CORRAL_TESTS_WORKER_HTTP_H_

#include <map>
#include <string>

namespace corral::testworker {

struct Request {
  std::string method;
  std::string target;                        // as sent: path and query
  std::string path;                          // without the query
  std::map<std::string, std::string> query;  // decoded
  bool keep_alive = true;                    // HTTP/1.1 default
};

enum class ReadResult { kOk, kClosed, kError };

// Reads one request from `fd`. `buffer` carries bytes read past the end of a
// request over to the next call (pipelining). Blocks in recv().
ReadResult ReadRequest(int fd, std::string& buffer, Request& request);

// Writes a complete text/plain response. Returns false when the peer is gone.
bool WriteResponse(int fd, int status, const std::string& body,
                   bool keep_alive);

// Returns query[key] as an integer, or `fallback` when absent or malformed.
long QueryInt(const Request& request, const std::string& key, long fallback);

}  // namespace corral::testworker

#endif  // CORRAL_TESTS_WORKER_HTTP_H_
