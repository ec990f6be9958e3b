// Small file-descriptor chores for code outside agent/os that holds fds it
// got from here (pipes, accepted connections) but must not call the kernel.
#ifndef CORRAL_AGENT_OS_FD_H_
#define CORRAL_AGENT_OS_FD_H_

#include <cstddef>
#include <string>

namespace corral::agent {

// Closes `fd` if it is >= 0. Errors are ignored: after close(2) fails the
// fd is gone all the same on Linux, and there is nothing left to do.
void CloseFd(int fd);

// Appends everything `fd` (non-blocking) has to give right now, up to EOF or
// EAGAIN, to `out`. Returns false once the writers are all gone (EOF) or
// the fd failed, true when more may come later.
bool ReadAvailable(int fd, std::string* out);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_FD_H_
