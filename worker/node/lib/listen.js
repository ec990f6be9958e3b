'use strict';
// listen(server, name?): the agent's socket under corral, $PORT alone.

const sockets = require('./sockets');
const drain = require('./drain');

function portFromEnv(fallback) {
  const v = process.env.PORT;
  if (v === undefined || v === '') return fallback;
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new Error(`PORT="${v}" is not a port number`);
  return Number(v);
}

// Listens `server` (a node:http / node:https / node:net Server: Express's
// app.listen() returns one, Fastify has fastify.server, Koa app.callback()
// goes into http.createServer) and resolves with it once it listens.
//
// Under corral: the inherited socket `name` (LISTEN_FDNAMES, set with
// --listen=NAME=tcp://...), or the first one. Alone: $PORT, else
// options.port, else 3000, on options.host (default: all addresses).
// The server is drained on SIGTERM unless options.drain is false.
//
// `nameOrOptions`: a name, or { name, port, host, drain }.
function listen(server, nameOrOptions = {}) {
  const opts = typeof nameOrOptions === 'string' ? { name: nameOrOptions } : nameOrOptions;
  let target;
  let where;
  try {
    const inherited = sockets.byName(opts.name);
    if (inherited) {
      if (inherited.taken) throw new Error(`corral: inherited socket "${inherited.name}" is already in use`);
      inherited.taken = true;
      target = { fd: inherited.fd };
      where = `inherited socket "${inherited.name}" (fd ${inherited.fd})`;
    } else {
      target = { port: portFromEnv(opts.port ?? 3000) };
      if (opts.host) target.host = opts.host;
      where = `port ${target.port}`;
    }
    // Before listening: a bad CORRAL_DRAIN_* fails here, and a connection
    // accepted at once is already counted.
    if (opts.drain !== false) drain.register(server);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    const failed = (err) => reject(new Error(`corral: cannot listen on ${where}: ${err.message}`));
    server.once('error', failed);
    server.listen(target, () => {
      server.off('error', failed);
      resolve(server);
    });
  });
}

module.exports = { listen };
