#include "worker/sdk/hiredis_asio.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <memory>

#include "boost/asio/posix/stream_descriptor.hpp"
#include "boost/asio/post.hpp"

namespace corral::worker {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// The adapter's state. Pending waits hold a shared_ptr, so the state outlives
// the context; `ac` becomes null when hiredis cleans up.
struct Events {
  Events(redisAsyncContext* c, asio::io_context& io) : ac(c), fd(io) {}

  redisAsyncContext* ac;
  asio::posix::stream_descriptor fd;
  bool want_read = false;
  bool want_write = false;
  bool read_armed = false;
  bool write_armed = false;
  bool write_posted = false;
  bool in_write = false;
};

// What ac->ev.data points at.
struct Handle {
  std::shared_ptr<Events> events;
};

void ArmRead(const std::shared_ptr<Events>& e);
void ArmWrite(const std::shared_ptr<Events>& e);

void ArmRead(const std::shared_ptr<Events>& e) {
  if (e->ac == nullptr || !e->want_read || e->read_armed) return;
  e->read_armed = true;
  e->fd.async_wait(asio::posix::descriptor_base::wait_read, [e](error_code ec) {
    e->read_armed = false;
    if (ec || e->ac == nullptr || !e->want_read) return;
    // May free the context (EOF, error): ac becomes null.
    redisAsyncHandleRead(e->ac);
    ArmRead(e);
  });
}

void ArmWrite(const std::shared_ptr<Events>& e) {
  if (e->ac == nullptr || !e->want_write || e->write_armed) return;
  e->write_armed = true;
  e->fd.async_wait(asio::posix::descriptor_base::wait_write,
                   [e](error_code ec) {
                     e->write_armed = false;
                     if (ec || e->ac == nullptr || !e->want_write) return;
                     // Also completes a non-blocking connect.
                     redisAsyncHandleWrite(e->ac);
                     ArmWrite(e);
                   });
}

Events& Of(void* privdata) { return *static_cast<Handle*>(privdata)->events; }
std::shared_ptr<Events> Ptr(void* privdata) {
  return static_cast<Handle*>(privdata)->events;
}

void AddRead(void* privdata) {
  Of(privdata).want_read = true;
  ArmRead(Ptr(privdata));
}
void DelRead(void* privdata) { Of(privdata).want_read = false; }
// Once connected, the socket is nearly always writable: write from a posted
// handler instead of asking the reactor first. That saves an epoll round
// trip per batch, and commands issued in one loop turn go out in one
// write(). Only when the kernel buffer is full do we wait for room.
void PostWrite(const std::shared_ptr<Events>& e) {
  if (e->write_posted || e->write_armed || e->in_write) return;
  e->write_posted = true;
  asio::post(e->fd.get_executor(), [e] {
    e->write_posted = false;
    if (e->ac == nullptr || !e->want_write) return;
    e->in_write = true;
    redisAsyncHandleWrite(e->ac);  // may free the context: ac becomes null
    e->in_write = false;
    ArmWrite(e);  // still wanted = the buffer is full
  });
}

void AddWrite(void* privdata) {
  Events& e = Of(privdata);
  e.want_write = true;
  if (e.in_write) return;  // the posted writer re-arms after it
  if (e.ac->c.flags & REDIS_CONNECTED) return PostWrite(Ptr(privdata));
  ArmWrite(Ptr(privdata));  // connecting: writable = connected
}
void DelWrite(void* privdata) { Of(privdata).want_write = false; }

void Cleanup(void* privdata) {
  Handle* handle = static_cast<Handle*>(privdata);
  Events& e = *handle->events;
  e.ac = nullptr;
  error_code ignored;
  e.fd.cancel(ignored);
  // hiredis closes the fd; release it so asio does not close it twice.
  e.fd.release();
  delete handle;
}

}  // namespace

absl::Status AttachHiredisToAsio(redisAsyncContext* ac, asio::io_context& io) {
  if (ac == nullptr || ac->err != 0) {
    return absl::InvalidArgumentError("hiredis context has an error");
  }
  if (ac->ev.data != nullptr) {
    return absl::FailedPreconditionError("hiredis context already attached");
  }
  auto events = std::make_shared<Events>(ac, io);
  error_code ec;
  events->fd.assign(ac->c.fd, ec);  // registers the fd with the reactor
  if (ec) {
    return absl::InternalError("cannot watch the Redis socket: " +
                               ec.message());
  }
  auto* handle = new Handle{std::move(events)};
  ac->ev.data = handle;
  ac->ev.addRead = AddRead;
  ac->ev.delRead = DelRead;
  ac->ev.addWrite = AddWrite;
  ac->ev.delWrite = DelWrite;
  ac->ev.cleanup = Cleanup;
  // As libevent.h does: watch both directions from the start, so the
  // non-blocking connect completes through redisAsyncHandleWrite.
  AddRead(handle);
  AddWrite(handle);
  return absl::OkStatus();
}

}  // namespace corral::worker
