#include "tests/sessions/redis_server.h"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "boost/asio/executor_work_guard.hpp"

namespace corral::testing {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
}

RedisServer::RedisServer(std::vector<std::string> extra, int port)
    : extra_(std::move(extra)), port_(port == 0 ? FreePort() : port) {
  char tmpl[] = "/tmp/corral-redis-XXXXXX";
  dir_ = mkdtemp(tmpl);
  Spawn();
}

RedisServer::~RedisServer() {
  Kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string RedisServer::url() const {
  return "redis://127.0.0.1:" + std::to_string(port_) + "/0";
}

bool RedisServer::Spawn() {
  std::vector<std::string> args = {
      "redis-server", "--port",           std::to_string(port_),
      "--bind",       "127.0.0.1",        "--dir",
      dir_,           "--save",           "",
      "--logfile",    dir_ + "/redis.log"};
  args.insert(args.end(), extra_.begin(), extra_.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    // Dies with the test process, even if the test crashes.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execvp("redis-server", argv.data());
    _exit(127);
  }
  pid_ = pid;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string pong = Command({"PING"});
    if (pong == "PONG" || pong.rfind("NOAUTH", 0) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

void RedisServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

bool RedisServer::Restart() {
  Kill();
  return Spawn();
}

void RedisServer::Signal(int signo) {
  if (pid_ > 0) kill(pid_, signo);
}

std::string RedisServer::Command(const std::vector<std::string>& args,
                                 const std::string& password) const {
  timeval tv{0, 300000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    return "";
  }
  redisSetTimeout(c, tv);
  if (!password.empty()) {
    redisReply* r =
        static_cast<redisReply*>(redisCommand(c, "AUTH %s", password.c_str()));
    if (r) freeReplyObject(r);
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisReply* r = static_cast<redisReply*>(redisCommandArgv(
      c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  std::string out;
  if (r != nullptr) {
    if (r->type == REDIS_REPLY_INTEGER) {
      out = std::to_string(r->integer);
    } else if (r->str != nullptr) {
      out.assign(r->str, r->len);
    } else if (r->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i < r->elements; ++i) {
        if (r->element[i]->str) {
          out += std::string(r->element[i]->str, r->element[i]->len) + "\n";
        }
      }
    }
    freeReplyObject(r);
  }
  redisFree(c);
  return out;
}

bool RunUntil(boost::asio::io_context& io, const std::function<bool()>& done,
              std::chrono::milliseconds timeout) {
  auto guard = boost::asio::make_work_guard(io);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  io.restart();
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.run_one_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace corral::testing
