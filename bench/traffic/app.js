'use strict';
// The traffic benchmark's Node app: one cheap route and one CPU-bound route,
// runnable unchanged under every supervisor the benchmark compares.
//
//   GET /         a short text answer
//   GET /heavy?n= sum of sqrt(i) for i < n (default 1e6): blocks this worker
//
// Every answer carries `X-Worker: <pid>`, so the load generator can count
// each worker's share. Where it listens:
//   - LISTEN_FDS set (corral, or the benchmark's own shared socket): fd 3;
//   - else PORT (PM2 and Node cluster: the primary shares the port).
// It says process.send('ready') once listening (corral --ready=ipc, PM2
// wait_ready) and on SIGTERM or SIGINT closes its server the way tutorials
// teach: server.close(), then exit when the last connection is gone.
const http = require('node:http');

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  let status = 200;
  let body;
  if (url.pathname === '/') {
    body = `hello from node app (pid ${process.pid})\n`;
  } else if (url.pathname === '/heavy') {
    const n = url.searchParams.has('n') ? Number(url.searchParams.get('n')) : 1e6;
    if (!Number.isInteger(n) || n < 0 || n > 1e9) {
      status = 400;
      body = 'n must be an integer from 0 to 1000000000\n';
    } else {
      let result = 0;
      for (let i = 0; i < n; i++) result += Math.sqrt(i);
      body = JSON.stringify({ n, result, pid: process.pid }) + '\n';
    }
  } else {
    status = 404;
    body = `no such page: ${url.pathname}\n`;
  }
  res.writeHead(status, {
    'Content-Type': 'text/plain',
    'Content-Length': Buffer.byteLength(body),
    'X-Worker': String(process.pid),
  });
  res.end(body);
});
// Longer than any client's idle time here, as behind a load balancer.
server.keepAliveTimeout = 65000;

const where = process.env.LISTEN_FDS ? { fd: 3 } : { port: Number(process.env.PORT || 3000), host: '127.0.0.1' };
server.listen(where, () => {
  if (process.send) process.send('ready');
});

let closing = false;
function shutdown() {
  if (closing) return;
  closing = true;
  server.close(() => process.exit(0));
  // Like the tutorials: a hard stop if connections linger.
  setTimeout(() => process.exit(1), 10000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Under a cluster primary, worker.disconnect() closes the server by itself.
