#include "worker/sdk/redis_connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <charconv>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "worker/sdk/hiredis_asio.h"

namespace corral::worker {
namespace {

using Clock = std::chrono::steady_clock;

// Server errors that mean "not now, or not here": retrying elsewhere or
// later may work, so callers see them as Unavailable.
constexpr absl::string_view kTransientErrors[] = {
    "READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS", "BUSY", "TRYAGAIN"};

absl::Status ErrorReplyStatus(absl::string_view text) {
  for (absl::string_view prefix : kTransientErrors) {
    if (absl::StartsWith(text, prefix)) {
      return absl::UnavailableError(absl::StrCat("redis: ", text));
    }
  }
  return absl::InternalError(absl::StrCat("redis: ", text));
}

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(Convert(r->element[i]));
      }
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

// A pipeline's replies as one array; a transient error in any of them
// (READONLY after a failover...) as that error, like a single command's.
absl::StatusOr<RedisReply> PipelineResult(std::vector<RedisReply> parts) {
  for (const RedisReply& part : parts) {
    if (part.type != RedisReply::Type::kError) continue;
    absl::Status s = ErrorReplyStatus(part.str);
    if (absl::IsUnavailable(s)) return s;
  }
  RedisReply out;
  out.type = RedisReply::Type::kArray;
  out.elements = std::move(parts);
  return out;
}

}  // namespace

bool IsRoleChangeError(const absl::Status& status) {
  return absl::IsUnavailable(status) &&
         (absl::StartsWith(status.message(), "redis: READONLY") ||
          absl::StartsWith(status.message(), "redis: MASTERDOWN"));
}

RedisCommands::RedisCommands(
    std::initializer_list<std::initializer_list<absl::string_view>> commands) {
  for (const auto& args : commands) Format(args);
}

void RedisCommands::Add(std::initializer_list<absl::string_view> args) {
  Format(args);
}

void RedisCommands::Add(const std::vector<std::string>& args) { Format(args); }

absl::string_view RedisCommands::command(size_t i) const {
  const size_t begin = i == 0 ? 0 : ends_[i - 1];
  return absl::string_view(resp_).substr(begin, ends_[i] - begin);
}

// RESP, as hiredis would write it: "*<n>\r\n", then "$<len>\r\n<arg>\r\n"
// per argument. hiredis formats through sdscatfmt, one call per argument:
// about a tenth of a session request's CPU in the worker.
template <typename Args>
void RedisCommands::Format(const Args& args) {
  // A header is at most 23 bytes: a type byte, 20 digits, CRLF.
  size_t size = 24;
  for (const auto& a : args) size += a.size() + 24;
  const size_t start = resp_.size();
  resp_.resize(start + size);
  char* p = resp_.data() + start;
  char* const end = p + size;
  auto put_header = [&](char kind, size_t n) {
    *p++ = kind;
    p = std::to_chars(p, end, n).ptr;
    *p++ = '\r';
    *p++ = '\n';
  };
  put_header('*', args.size());
  for (const auto& a : args) {
    put_header('$', a.size());
    std::memcpy(p, a.data(), a.size());
    p += a.size();
    *p++ = '\r';
    *p++ = '\n';
  }
  resp_.resize(p - resp_.data());
  ends_.push_back(resp_.size());
}

struct RedisConnection::Pending {
  RedisConnection* conn;
  RedisCallback cb;
  // A pipeline: the replies before the last one.
  bool pipeline = false;
  std::vector<RedisReply> parts;
};

std::shared_ptr<RedisConnection> RedisConnection::Create(
    boost::asio::io_context& io, absl::Duration command_timeout) {
  return std::shared_ptr<RedisConnection>(
      new RedisConnection(io, command_timeout));
}

RedisConnection::RedisConnection(boost::asio::io_context& io,
                                 absl::Duration command_timeout)
    : io_(io),
      command_timeout_(command_timeout),
      connect_timer_(io),
      deadline_timer_(io) {}

RedisConnection::~RedisConnection() {
  // self_ holds us while a context exists, so there is none left here.
}

void RedisConnection::Post(std::function<void()> fn) {
  boost::asio::post(io_, std::move(fn));
}

void RedisConnection::Connect(const RedisAddress& address,
                              absl::Duration timeout,
                              std::function<void(absl::Status)> done) {
  address_ = address;
  connect_done_ = std::move(done);
  redisAsyncContext* ac =
      address.unix_path.empty()
          ? redisAsyncConnect(address.host.c_str(), address.port)
          : redisAsyncConnectUnix(address.unix_path.c_str());
  absl::Status failed;
  if (ac == nullptr) {
    failed = absl::ResourceExhaustedError("out of memory for hiredis");
  } else if (ac->err != 0) {
    failed = absl::UnavailableError(absl::StrCat(
        "cannot connect to redis at ", address.ToString(), ": ", ac->errstr));
    redisAsyncFree(ac);
  } else if (absl::Status s = AttachHiredisToAsio(ac, io_); !s.ok()) {
    failed = s;
    redisAsyncFree(ac);
  }
  if (!failed.ok()) {
    Post([done = std::exchange(connect_done_, nullptr), failed] {
      done(failed);
    });
    return;
  }
  ac_ = ac;
  ac_->data = this;
  self_ = shared_from_this();
  redisAsyncSetConnectCallback(ac_, &RedisConnection::OnConnect);
  redisAsyncSetDisconnectCallback(ac_, &RedisConnection::OnDisconnect);
  connect_timer_.expires_after(absl::ToChronoNanoseconds(timeout));
  connect_timer_.async_wait(
      [weak = weak_from_this(), timeout](boost::system::error_code ec) {
        auto self = weak.lock();
        if (ec || !self || self->connected_ || self->ac_ == nullptr) return;
        self->Close(absl::UnavailableError(
            absl::StrCat("connecting to redis at ", self->address_.ToString(),
                         " timed out after ", absl::FormatDuration(timeout))));
      });
}

void RedisConnection::SetOnLost(std::function<void(absl::Status)> on_lost) {
  on_lost_ = std::move(on_lost);
}

// hiredis calls this from redisAsyncHandleRead/Write. On failure it frees
// the context right after we return, without calling OnDisconnect.
void RedisConnection::OnConnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  self->connect_timer_.cancel();
  absl::Status result;
  if (status == REDIS_OK) {
    self->connected_ = true;
  } else {
    result = absl::UnavailableError(absl::StrCat("cannot connect to redis at ",
                                                 self->address_.ToString(),
                                                 ": ", ac->errstr));
    self->ac_ = nullptr;
    self->Detach();
  }
  if (self->connect_done_) {
    self->Post([done = std::exchange(self->connect_done_, nullptr), result] {
      done(result);
    });
  }
}

// hiredis calls this just before it frees an established context.
void RedisConnection::OnDisconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  self->ac_ = nullptr;
  self->connected_ = false;
  if (self->on_lost_) {
    absl::Status why = absl::UnavailableError(
        status == REDIS_OK
            ? absl::StrCat("redis at ", self->address_.ToString(),
                           " closed the connection")
            : absl::StrCat("connection to redis at ", self->address_.ToString(),
                           " lost: ", ac->errstr));
    self->Post(
        [lost = std::exchange(self->on_lost_, nullptr), why] { lost(why); });
  }
  self->Detach();
}

void RedisConnection::OnReply(redisAsyncContext* ac, void* reply,
                              void* privdata) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(privdata));
  RedisConnection* self = p->conn;
  if (!self->deadlines_.empty()) self->deadlines_.pop_front();
  absl::StatusOr<RedisReply> result;
  if (reply == nullptr) {
    // The context is going away (error, or our Close()).
    result = !self->close_reason_.ok()
                 ? self->close_reason_
                 : absl::UnavailableError(absl::StrCat(
                       "connection to redis at ", self->address_.ToString(),
                       " lost", ac->errstr[0] ? ": " : "", ac->errstr));
  } else if (auto* r = static_cast<redisReply*>(reply); p->pipeline) {
    p->parts.push_back(Convert(r));
    result = PipelineResult(std::move(p->parts));
  } else {
    result = r->type == REDIS_REPLY_ERROR
                 ? absl::StatusOr<RedisReply>(
                       ErrorReplyStatus(absl::string_view(r->str, r->len)))
                 : absl::StatusOr<RedisReply>(Convert(r));
  }
  self->Post([cb = std::move(p->cb), result = std::move(result)]() mutable {
    cb(std::move(result));
  });
}

void RedisConnection::OnPart(redisAsyncContext*, void* reply, void* privdata) {
  auto* p = static_cast<Pending*>(privdata);
  if (reply != nullptr) {
    p->parts.push_back(Convert(static_cast<redisReply*>(reply)));
  }
}

bool RedisConnection::Append(absl::string_view command,
                             void (*fn)(redisAsyncContext*, void*, void*),
                             void* privdata) {
  return redisAsyncFormattedCommand(ac_, fn, privdata, command.data(),
                                    command.size()) == REDIS_OK;
}

void RedisConnection::Send(const std::vector<std::string>& args,
                           RedisCallback cb) {
  RedisCommands command;
  command.Add(args);
  Enqueue(command, std::move(cb), /*pipeline=*/false);
}

void RedisConnection::SendFormatted(const RedisCommands& command,
                                    RedisCallback cb) {
  Enqueue(command, std::move(cb), /*pipeline=*/false);
}

void RedisConnection::SendPipeline(const RedisCommands& commands,
                                   RedisCallback cb) {
  Enqueue(commands, std::move(cb), /*pipeline=*/true);
}

void RedisConnection::Enqueue(const RedisCommands& commands, RedisCallback cb,
                              bool pipeline) {
  if (ac_ == nullptr || !connected_) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat("not connected to redis at ", address_.ToString()));
    Post([cb = std::move(cb), s] { cb(s); });
    return;
  }
  if (commands.size() == 0) {
    absl::Status s = absl::InvalidArgumentError("redis: no command to send");
    Post([cb = std::move(cb), s] { cb(s); });
    return;
  }
  auto* p = new Pending{this, std::move(cb), pipeline, {}};
  if (pipeline) p->parts.reserve(commands.size());
  // One callback per reply, in order: hiredis pairs them by position. The
  // loop is single-threaded, so nothing else is appended in between; only
  // the last reply owns `p`.
  bool ok = true;
  for (size_t i = 0; ok && i < commands.size(); ++i) {
    const bool last = i + 1 == commands.size();
    ok = Append(commands.command(i),
                last ? &RedisConnection::OnReply : &RedisConnection::OnPart, p);
  }
  if (!ok) {
    // hiredis refuses only a context being torn down, and then from the
    // first Append on: nothing was queued that could still reach `p`.
    absl::Status s = absl::UnavailableError("redis connection is closing");
    Post([cb = std::move(p->cb), s] { cb(s); });
    delete p;
    return;
  }
  deadlines_.push_back(Clock::now() +
                       absl::ToChronoNanoseconds(command_timeout_));
  ArmDeadline();
}

void RedisConnection::ArmDeadline() {
  if (deadline_armed_ || deadlines_.empty()) return;
  deadline_armed_ = true;
  deadline_timer_.expires_at(deadlines_.front());
  deadline_timer_.async_wait(
      [weak = weak_from_this()](boost::system::error_code) {
        if (auto self = weak.lock()) self->OnDeadline();
      });
}

void RedisConnection::OnDeadline() {
  deadline_armed_ = false;
  if (ac_ == nullptr || deadlines_.empty()) return;
  if (deadlines_.front() > Clock::now()) return ArmDeadline();
  // Replies come in order: the oldest one is late, so the server or the
  // path to it is stuck. Give up on the connection, like a socket error.
  absl::Status why = absl::UnavailableError(
      absl::StrCat("redis at ", address_.ToString(), " did not answer within ",
                   absl::FormatDuration(command_timeout_)));
  auto lost = std::exchange(on_lost_, nullptr);
  Close(why);
  if (lost) Post([lost, why] { lost(why); });
}

void RedisConnection::Close(const absl::Status& why) {
  connect_timer_.cancel();
  deadline_timer_.cancel();
  on_lost_ = nullptr;
  if (ac_ == nullptr) return;
  close_reason_ = why.ok() ? absl::CancelledError("connection closed") : why;
  redisAsyncContext* ac = std::exchange(ac_, nullptr);
  bool was_connected = std::exchange(connected_, false);
  // Not connected: hiredis will not call OnConnect, so answer `done` here.
  if (!was_connected && connect_done_) {
    Post([done = std::exchange(connect_done_, nullptr), s = close_reason_] {
      done(s);
    });
  }
  // Fails pending commands through OnReply(nullptr), calls OnDisconnect
  // (was connected), and frees the context. Never called from inside a
  // hiredis callback: all our callbacks run posted.
  redisAsyncFree(ac);
  Detach();
}

void RedisConnection::Detach() {
  deadlines_.clear();
  // Drop the self-reference later: we may be inside our own method.
  if (self_) Post([keep = std::move(self_)] {});
}

}  // namespace corral::worker
