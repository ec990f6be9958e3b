// The worker's side of systemd's sd_notify protocol: datagrams to
// $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace).
// Thread-safe: sendto() on one datagram socket from any thread.
#ifndef CORRAL_TESTS_WORKER_NOTIFY_H_
#define CORRAL_TESTS_WORKER_NOTIFY_H_

#include <string>

namespace corral::testworker {

// Opens the socket when NOTIFY_SOCKET is set; otherwise Notify() is a no-op.
void NotifyInit();

// Sends `message` (e.g. "READY=1") as one datagram. Returns false on failure
// (and says so on stderr); true when sent or when there is no NOTIFY_SOCKET.
bool Notify(const std::string& message);

// Watchdog interval in microseconds from WATCHDOG_USEC, honouring
// WATCHDOG_PID (unset or our pid); 0 when the watchdog is off.
long WatchdogUsec();

}  // namespace corral::testworker

#endif  // CORRAL_TESTS_WORKER_NOTIFY_H_
