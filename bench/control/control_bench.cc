// corral-control-bench: latency of the agent's control plane as its clients
// see it. Closed loop (each client sends its next call when the last one
// answered), like the kubelet's probes and corralctl.
//
//   corral-control-bench --socket PATH --probe HOST:PORT [--calls N]
//                        [--clients C]
//
// Prints one line per call kind: count, p50, p90, p99, p99.9 and max in
// microseconds, then "ok"/"FAIL" against the goals (health p99 < 1 ms,
// GetStatus p99 < 2 ms).
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "corral/v1/agent.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  std::vector<double> micros;
  int errors = 0;
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1,
                            static_cast<size_t>(p / 100.0 * sorted.size()));
  return sorted[i];
}

// Runs `call` `calls` times on each of `clients` threads (after a warm-up).
Result Measure(int clients, int calls,
               const std::function<std::function<bool()>()>& make_client) {
  std::vector<Result> per_client(clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::function<bool()> call = make_client();
      for (int i = 0; i < 50; ++i) call();  // connect, warm up
      for (int i = 0; i < calls; ++i) {
        const auto start = Clock::now();
        const bool ok = call();
        const double us =
            std::chrono::duration<double, std::micro>(Clock::now() - start)
                .count();
        if (ok) {
          per_client[c].micros.push_back(us);
        } else {
          per_client[c].errors++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  Result all;
  for (Result& r : per_client) {
    all.micros.insert(all.micros.end(), r.micros.begin(), r.micros.end());
    all.errors += r.errors;
  }
  std::sort(all.micros.begin(), all.micros.end());
  return all;
}

bool Report(const std::string& what, const Result& r, double goal_p99_us) {
  const double p99 = Percentile(r.micros, 99);
  const bool ok = r.errors == 0 && !r.micros.empty() && p99 < goal_p99_us;
  std::printf(
      "%-34s n=%-6zu errors=%-3d p50=%7.0fus p90=%7.0fus p99=%7.0fus "
      "p99.9=%7.0fus max=%7.0fus  goal p99<%.0fus: %s\n",
      what.c_str(), r.micros.size(), r.errors, Percentile(r.micros, 50),
      Percentile(r.micros, 90), p99, Percentile(r.micros, 99.9),
      r.micros.empty() ? 0 : r.micros.back(), goal_p99_us, ok ? "ok" : "FAIL");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  std::string probe;
  int calls = 5000;
  int clients = 1;
  CLI::App app{"Latency of corral-agent's health Check and GetStatus."};
  app.add_option("--socket", socket, "the agent's control socket")->required();
  app.add_option("--probe", probe, "the agent's probe port, HOST:PORT")
      ->required();
  app.add_option("--calls", calls, "calls per client and kind")
      ->capture_default_str();
  app.add_option("--clients", clients, "concurrent clients per kind")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Each client gets its own channel (its own connection), as separate
  // probers would.
  auto health = [&probe] {
    auto stub = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(probe, grpc::InsecureChannelCredentials()));
    return std::function<bool()>([stub = std::shared_ptr(std::move(stub))] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(2));
      grpc::health::v1::HealthCheckRequest request;
      request.set_service("readiness");
      grpc::health::v1::HealthCheckResponse response;
      return stub->Check(&context, request, &response).ok();
    });
  };
  auto status = [&socket] {
    auto stub = corral::v1::Agent::NewStub(grpc::CreateChannel(
        "unix:" + socket, grpc::InsecureChannelCredentials()));
    return std::function<bool()>([stub = std::shared_ptr(std::move(stub))] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(2));
      corral::v1::GetStatusResponse response;
      return stub->GetStatus(&context, {}, &response).ok();
    });
  };
  bool ok = Report("health Check (probe port, TCP)",
                   Measure(clients, calls, health), 1000);
  ok = Report("GetStatus (control socket)", Measure(clients, calls, status),
              2000) &&
       ok;
  return ok ? 0 : 1;
}
