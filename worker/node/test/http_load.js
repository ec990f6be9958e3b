'use strict';
// A keep-alive HTTP/1.1 client on plain sockets that counts every failure
// by kind (the kinds of tests/pylib/http_client.py):
//   refused           connect() refused
//   reset             ECONNRESET / EPIPE
//   eof_idle          the server closed a connection that had served a
//                     request before, without a byte of this response
//   eof_no_response   the same on a fresh connection
//   eof_mid_response  the connection ended inside a response
//   timeout           no complete response in time
//   non_2xx           a complete response with another status
// A response with `Connection: close` ends its connection; the next
// request opens a new one (that is the drain working, not a failure).

const net = require('node:net');

// One request on `conn` (a {socket, served} or null), resolving with
// { ok, kind, status, close, body, conn }.
function request(port, pathName, conn, timeoutMs) {
  return new Promise((resolve) => {
    let socket = conn && !conn.socket.destroyed && !conn.socket.readableEnded ? conn.socket : null;
    const reused = socket !== null;
    if (!socket) {
      socket = net.connect(port, '127.0.0.1');
      conn = { socket, served: 0 };
    }
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      if (!result.ok || result.close) socket.destroy();
      resolve({ ...result, conn: result.ok && !result.close ? conn : null });
    };
    const timer = setTimeout(() => finish({ ok: false, kind: 'timeout' }), timeoutMs);
    const onError = (err) => {
      if (err.code === 'ECONNREFUSED') return finish({ ok: false, kind: 'refused' });
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        return finish({ ok: false, kind: buf.length ? 'eof_mid_response' : 'reset', error: err.code });
      }
      return finish({ ok: false, kind: 'reset', error: err.code || String(err) });
    };
    const onEnd = () => {
      if (buf.length > 0) return finish({ ok: false, kind: 'eof_mid_response' });
      finish({ ok: false, kind: reused || conn.served > 0 ? 'eof_idle' : 'eof_no_response' });
    };
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const head = buf.indexOf('\r\n\r\n');
      if (head < 0) return;
      const lines = buf.subarray(0, head).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] || 0);
      if (buf.length < head + 4 + length) return;
      conn.served++;
      const close = /close/i.test(headers.connection || '');
      const body = buf.subarray(head + 4, head + 4 + length).toString();
      finish({ ok: status >= 200 && status < 300, kind: status >= 200 && status < 300 ? null : 'non_2xx',
        status, close, body, headers });
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.write(`GET ${pathName} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}

// `connections` loops, each sending requests back to back on a keep-alive
// connection, until stop(). Returns { stop(): Promise<stats> } with stats =
// { ok, failures: {kind: n}, examples: [...], reconnects, byBody }.
function keepAliveLoad(port, { connections = 8, path: pathName = '/', timeoutMs = 5000, pauseMs = 0 } = {}) {
  const stats = { ok: 0, failures: {}, examples: [], closes: 0, bodies: new Map() };
  let running = true;
  const loops = [];
  for (let i = 0; i < connections; i++) {
    loops.push((async () => {
      let conn = null;
      while (running) {
        const r = await request(port, pathName, conn, timeoutMs);
        conn = r.conn;
        if (r.ok) {
          stats.ok++;
          if (r.close) stats.closes++;
          stats.bodies.set(r.body, (stats.bodies.get(r.body) || 0) + 1);
        } else {
          stats.failures[r.kind] = (stats.failures[r.kind] || 0) + 1;
          if (stats.examples.length < 10) stats.examples.push({ kind: r.kind, error: r.error, status: r.status, at: Date.now() });
        }
        if (pauseMs) await new Promise((res) => setTimeout(res, pauseMs));
      }
      if (conn) conn.socket.destroy();
    })());
  }
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
      return stats;
    },
  };
}

function failureCount(stats) {
  return Object.values(stats.failures).reduce((a, b) => a + b, 0);
}

module.exports = { request, keepAliveLoad, failureCount };
