'use strict';
// The agent's listening sockets, handed out once each: to listen(server,
// name) or, with register.js, to the app's own listen(port).

const fs = require('node:fs');
const { inheritedSockets } = require('./env');

let sockets = null;

function all() {
  if (sockets === null) sockets = inheritedSockets().map((s) => ({ ...s, taken: false, port: undefined }));
  return sockets;
}

// The local TCP port of an inherited fd (Linux: the socket's inode in
// /proc/net/tcp{,6}), or null for a unix socket or when /proc says nothing.
function portOf(socket) {
  if (socket.port !== undefined) return socket.port;
  socket.port = null;
  try {
    const link = fs.readlinkSync(`/proc/self/fd/${socket.fd}`);
    const inode = /^socket:\[(\d+)\]$/.exec(link);
    if (!inode) return null;
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f[9] === inode[1]) {
          socket.port = parseInt(f[1].split(':')[1], 16);
          return socket.port;
        }
      }
    }
  } catch {
    // no /proc: ports cannot be matched, names and order still work
  }
  return null;
}

// The socket called `name`; the first one without a name. Throws when
// there is no such name, listing the names there are.
function byName(name) {
  const list = all();
  if (list.length === 0) return null;
  const s = name === undefined ? list[0] : list.find((x) => x.name === name);
  if (!s) {
    throw new Error(`corral: no inherited socket named "${name}" (LISTEN_FDNAMES has: ` +
      `${list.map((x) => x.name).join(', ')}); name it with --listen=${name}=tcp://...`);
  }
  return s;
}

// For register.js: an untaken socket on `port`, else (when none has been
// taken yet) the first untaken one, else null.
function forPort(port) {
  const free = all().filter((s) => !s.taken);
  const same = free.find((s) => portOf(s) === port);
  if (same) return same;
  if (all().some((s) => s.taken)) return null;
  return free[0] || null;
}

module.exports = { all, byName, forPort, portOf };
