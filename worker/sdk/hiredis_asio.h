// Runs a hiredis 0.14 async context on a Boost.Asio io_context, the way
// hiredis' own adapters/libevent.h and adapters/libuv.h hook it into those
// loops: hiredis asks for read/write interest through ac->ev hooks, we wait
// for readiness with async_wait and call redisAsyncHandleRead/Write.
//
// The fd stays hiredis' (it closes it in redisFree); we only watch it.
// Single-threaded: the io_context must run on one thread, the one that
// issues commands.
#ifndef CORRAL_WORKER_SDK_HIREDIS_ASIO_H_
#define CORRAL_WORKER_SDK_HIREDIS_ASIO_H_

#include "absl/status/status.h"
#include "boost/asio/io_context.hpp"

struct redisAsyncContext;

namespace corral::worker {

// Attaches `ac` (fresh from redisAsyncConnect*, no error) to `io`. The
// attachment ends by itself when hiredis frees the context.
absl::Status AttachHiredisToAsio(redisAsyncContext* ac,
                                 boost::asio::io_context& io);

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_HIREDIS_ASIO_H_
