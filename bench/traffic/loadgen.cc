// corral-loadgen: a closed-loop HTTP/1.1 keep-alive load generator that
// counts every failure exactly and by kind, and which worker served what.
//
//   corral-loadgen --url http://127.0.0.1:8080/ [--connections 32]
//                  [--threads 2] [--duration 10] [--timeout 5]
//                  [--retry-delay 0.01] [--tick 0.1] [--out FILE]
//                  [--drain-ack FILE]
//
// N connections each send a request, wait for the whole response and send
// the next (no pipelining); after a failure a connection waits --retry-delay
// and connects again. It runs for --duration seconds or until SIGINT/SIGTERM,
// then writes one JSON object (bench/traffic/README.md lists the fields).
// SIGUSR1 starts drain mode: no new connections from then on; each open one
// is used until the server closes it, and the run ends when none is left.
// --drain-ack FILE is created once every client thread is in drain mode, so
// that a script can wait for it before it stops the server: until then a
// connection the server closes is reconnected (issue 10: under load that
// took over 20 ms, and those reconnections met a server already draining).
// Requests still in flight when the run ends are counted neither way.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/traffic/connection.h"
#include "bench/traffic/stats.h"

namespace {

using namespace corral::bench;
namespace asio = boost::asio;

struct Flags {
  std::string url;
  int connections = 32;
  int threads = 2;
  double duration = 10;
  double timeout = 5;
  double retry_delay = 0.01;
  double tick = 0.1;
  std::string out;
  std::string drain_ack;
};

// One client thread: its own io_context, connections and Stats.
struct Client {
  asio::io_context io{1};
  std::vector<std::unique_ptr<Connection>> connections;
  Stats stats;
  std::thread thread;
};

bool ParseUrl(const std::string& url, ClientConfig* config,
              std::string* error) {
  static const std::regex kUrl(R"(http://([0-9.]+):([0-9]+)(/[^ ]*)?)");
  std::smatch m;
  if (!std::regex_match(url, m, kUrl)) {
    *error = absl::StrCat("--url=", url,
                          ": expected http://IPV4:PORT/PATH (no names, no "
                          "https)");
    return false;
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address_v4(m[1].str(), ec);
  const int port = std::stoi(m[2].str());
  if (ec || port <= 0 || port > 65535) {
    *error = absl::StrCat("--url=", url, ": bad address or port");
    return false;
  }
  config->endpoint = {address, static_cast<unsigned short>(port)};
  const std::string target = m[3].matched ? m[3].str() : "/";
  config->request =
      absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: ", m[1].str(), ":",
                   m[2].str(), "\r\nUser-Agent: corral-loadgen\r\n\r\n");
  return true;
}

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// Creates `path` empty (the drain acknowledgement); a failure is reported,
// and the script waiting for the file then says it never came.
void CreateFile(const std::string& path) {
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) {
    fprintf(stderr, "corral-loadgen: --drain-ack=%s: %s\n", path.c_str(),
            strerror(errno));
    return;
  }
  fclose(f);
}

// Waits for the end of the run on the main thread: the duration, SIGINT or
// SIGTERM, or (after SIGUSR1) the last connection closing. Returns the
// drain start, 0 if there was none.
double WaitForEnd(const Flags& flags, double start_s,
                  std::vector<std::unique_ptr<Client>>& clients,
                  const std::atomic<int>& live, const sigset_t& signals) {
  double drain_s = 0;
  const double end_s = start_s + flags.duration;
  for (;;) {
    const double now = NowSeconds();
    if (now >= end_s) return drain_s;
    if (drain_s > 0 && live.load() == 0) return drain_s;
    const double wait = std::min(0.05, end_s - now);
    timespec ts{0, static_cast<long>(wait * 1e9)};
    const int sig = sigtimedwait(&signals, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) return drain_s;
    if (sig == SIGUSR1 && drain_s == 0) {
      drain_s = NowSeconds();
      // Shared by the closures: the last client thread to stop
      // reconnecting creates the acknowledgement.
      auto acked = std::make_shared<std::atomic<size_t>>(0);
      for (auto& client : clients) {
        asio::post(client->io, [c = client.get(), acked, n = clients.size(),
                                path = flags.drain_ack] {
          for (auto& conn : c->connections) conn->StopReconnecting();
          if (acked->fetch_add(1) + 1 == n && !path.empty()) {
            CreateFile(path);
          }
        });
      }
    }
  }
}

int Run(const Flags& flags) {
  ClientConfig config;
  std::string error;
  if (!ParseUrl(flags.url, &config, &error)) {
    fprintf(stderr, "corral-loadgen: %s\n", error.c_str());
    return 2;
  }
  config.timeout = Millis(flags.timeout);
  config.retry_delay = Millis(flags.retry_delay);
  config.tick_s = flags.tick;
  // Signals are taken by sigtimedwait on the main thread only: block them
  // before any thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::atomic<int> live{0};
  std::vector<std::unique_ptr<Client>> clients;
  for (int t = 0; t < flags.threads; ++t) {
    clients.push_back(std::make_unique<Client>());
  }
  config.start_s = NowSeconds();
  for (int i = 0; i < flags.connections; ++i) {
    Client& c = *clients[i % flags.threads];
    c.connections.push_back(
        std::make_unique<Connection>(c.io, config, &c.stats, &live));
  }
  for (auto& client : clients) {
    Client* c = client.get();
    c->thread = std::thread([c] {
      for (auto& conn : c->connections) conn->Start();
      auto guard = asio::make_work_guard(c->io);
      c->io.run();
    });
  }
  RunInfo info{.url = flags.url,
               .connections = flags.connections,
               .threads = flags.threads,
               .tick_s = flags.tick,
               .start_s = config.start_s};
  info.drain_s = WaitForEnd(flags, config.start_s, clients, live, signals);
  info.end_s = NowSeconds();
  Stats total;
  for (auto& client : clients) {
    client->io.stop();
    client->thread.join();
    total.Merge(client->stats);
    // Sockets go before their io_context (the Client's member order).
    client->connections.clear();
  }
  const std::string json = ToJson(info, total);
  FILE* out = flags.out.empty() ? stdout : fopen(flags.out.c_str(), "w");
  if (out == nullptr) {
    fprintf(stderr, "corral-loadgen: --out=%s: %s\n", flags.out.c_str(),
            strerror(errno));
    return 1;
  }
  fputs(json.c_str(), out);
  if (out != stdout) fclose(out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{
      "corral-loadgen: closed-loop keep-alive HTTP load, every "
      "failure classified"};
  app.add_option("--url", flags.url, "http://IPV4:PORT/PATH")->required();
  app.add_option("--connections", flags.connections, "keep-alive connections")
      ->check(CLI::Range(1, 100000));
  app.add_option("--threads", flags.threads, "client threads")
      ->check(CLI::Range(1, 64));
  app.add_option("--duration", flags.duration, "seconds (at most)")
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout", flags.timeout,
                 "seconds for connect + response before a timeout")
      ->check(CLI::PositiveNumber);
  app.add_option("--retry-delay", flags.retry_delay,
                 "seconds to wait before reconnecting after a failure")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--tick", flags.tick, "seconds per ok_per_tick entry")
      ->check(CLI::PositiveNumber);
  app.add_option("--out", flags.out, "write the JSON here, not to stdout");
  app.add_option("--drain-ack", flags.drain_ack,
                 "create this file once SIGUSR1's drain mode is in effect on "
                 "every thread (no reconnection from then on)");
  CLI11_PARSE(app, argc, argv);
  return Run(flags);
}
