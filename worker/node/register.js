'use strict';
// node -r @corral/node/register app.js
//
// Runs an unmodified app under corral-agent, as PM2's cluster mode runs an
// app that calls app.listen(3000). Under corral (CORRAL_WORKER_ID set):
//
// - the app's first listen(port) (or the one whose port matches one of the
//   agent's sockets) listens on the agent's inherited socket instead;
// - when that server listens, READY is sent (the agent needs --ready=ipc),
//   unless the app has sent 'ready' itself, or CORRAL_WAIT_READY=1 says it
//   will (as PM2's wait_ready: then only the app's process.send('ready')
//   counts);
// - on SIGTERM that server drains gracefully (lib/drain.js) and the process
//   exits 0, unless the app handles SIGTERM itself (it then owns the exit).
//
// Not under corral it changes nothing.

const net = require('node:net');
const corral = require('./lib/index');
const notify = require('./lib/notify');
const sockets = require('./lib/sockets');

function waitReady() {
  const v = process.env.CORRAL_WAIT_READY;
  return v === '1' || v === 'true';
}

// The TCP port a listen(...) call asks for, or undefined for a path, an fd,
// a handle, or no port at all.
function requestedPort(args) {
  const first = args[0];
  if (typeof first === 'number') return first;
  if (typeof first === 'string' && /^\d+$/.test(first)) return Number(first);
  if (first && typeof first === 'object' && !('fd' in first) && !('path' in first) &&
      !('handle' in first) && !('_handle' in first) && first.port !== undefined) {
    return Number(first.port);
  }
  return undefined;
}

// Drains `server` on SIGTERM and sends READY when it listens.
function adopt(server) {
  corral.drain(server);
  server.once('listening', () => {
    if (!waitReady()) notify.ready();
  });
}

function install() {
  const original = net.Server.prototype.listen;
  let adopted = false;
  net.Server.prototype.listen = function listenUnderCorral(...args) {
    const port = requestedPort(args);
    // Port 0 asks for a private port (tests, internal helpers): not ours.
    if (!port) return original.apply(this, args);
    const inherited = sockets.forPort(port);
    if (!inherited) {
      // No --listen: the first listen(port) is still the app's server.
      if (!adopted && sockets.all().length === 0) {
        adopted = true;
        adopt(this);
      }
      return original.apply(this, args);
    }
    inherited.taken = true;
    adopted = true;
    const callback = args.find((a) => typeof a === 'function');
    const agentPort = sockets.portOf(inherited);
    process.stderr.write(`corral: listen(${port}) takes the agent's socket "${inherited.name}" ` +
      `(fd ${inherited.fd}${agentPort ? `, port ${agentPort}` : ''})\n`);
    adopt(this);
    const target = { fd: inherited.fd };
    return callback ? original.call(this, target, callback) : original.call(this, target);
  };
}

if (corral.underCorral) {
  notify.observeAppReady();
  install();
}
