'use strict';
// A Node `cluster` primary the way the tutorials write one, for the traffic
// benchmark: it forks WORKERS copies of app.js (default 2) that share PORT
// through the primary (round robin, Node's default on Linux), replaces a
// worker that dies, restarts them one at a time on SIGHUP, and stops them
// all on SIGTERM/SIGINT.
//
//   PORT=3000 WORKERS=2 node node-cluster.js [app.js]
const cluster = require('node:cluster');
const path = require('node:path');

const count = Number(process.env.WORKERS || 2);
cluster.setupPrimary({ exec: process.argv[2] || path.join(__dirname, 'app.js') });
for (let i = 0; i < count; i++) cluster.fork();

// As in the worker.disconnect() example of Node's cluster docs: a worker
// that has not exited 2 s after disconnect() is killed. Without it a worker
// never exits under steady keep-alive traffic: server.close() closes only
// the connections idle at that moment, and busy ones never become idle.
// (worker.kill() would wait for the same disconnect: signal the process.)
const GRACE_MS = 2000;
function stopWorker(worker) {
  const timer = setTimeout(() => worker.process.kill('SIGTERM'), GRACE_MS);
  worker.once('exit', () => clearTimeout(timer));
  worker.disconnect();
}

let stopping = false;
cluster.on('exit', (worker, code, signal) => {
  // A crash (not a disconnect we asked for): replace it.
  if (!stopping && !worker.exitedAfterDisconnect) {
    console.error(`worker ${worker.process.pid} died (${signal || code}); forking a new one`);
    cluster.fork();
  }
  if (stopping && Object.keys(cluster.workers).length === 0) process.exit(0);
});

// Zero-downtime restart as in "Node.js Design Patterns": disconnect one
// worker, fork its replacement when it has exited, go on to the next one
// when the replacement listens. The other workers serve meanwhile.
let restarting = false;
process.on('SIGHUP', () => {
  if (restarting || stopping) return;
  restarting = true;
  const workers = Object.values(cluster.workers);
  const restartWorker = (i) => {
    if (i >= workers.length) {
      restarting = false;
      console.error('rolling restart done');
      return;
    }
    const worker = workers[i];
    worker.once('exit', () => {
      if (!worker.exitedAfterDisconnect) return;
      const replacement = cluster.fork();
      replacement.once('listening', () => restartWorker(i + 1));
    });
    stopWorker(worker);
  };
  restartWorker(0);
});

function stop() {
  if (stopping) return;
  stopping = true;
  const workers = Object.values(cluster.workers);
  if (workers.length === 0) process.exit(0);
  for (const worker of workers) stopWorker(worker);
  setTimeout(() => process.exit(1), 10000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
