'use strict';
// Messages to the agent over Node's IPC channel, the channel corral-agent
// gives with --ready=ipc (NODE_CHANNEL_FD, JSON lines). The agent reads
// "ready" (what PM2 apps send) and {"corral": ...} objects
// (docs/agent-contract.md). Without a channel every call is a no-op: the
// app runs alone, or under --ready=notify, which Node cannot speak without
// a native module (a one-line warning says so).

const { watchdogInterval } = require('./env');

// process.send as it was before anyone (register.js) wrapped it.
const send = typeof process.send === 'function' ? process.send.bind(process) : null;
const state = { ready: false, status: null, watchdogTimer: null, warned: false };

function post(message) {
  if (!send) return false;
  try {
    // The callback takes a closed channel (agent gone) as an error instead
    // of an 'error' event that would crash the app.
    send(message, () => {});
  } catch {
    return false;
  }
  return true;
}

function warnNoChannel() {
  if (send || state.warned || !process.env.NOTIFY_SOCKET || !process.env.CORRAL_WORKER_ID) return;
  state.warned = true;
  process.emitWarning('corral: no IPC channel, so ready/status/watchdog are not sent; ' +
    'run corral-agent with --ready=ipc for Node workers', { code: 'CORRAL_NO_IPC' });
}

// READY: the worker serves. Sent once; "ready" as PM2 apps send it, so it
// works with every agent version.
function ready() {
  if (state.ready) return;
  state.ready = true;
  if (!post('ready')) warnNoChannel();
}

// STATUS: one line shown by `corralctl status` and the worker_status event.
function status(text) {
  const line = String(text).replace(/[\r\n]+/g, ' ');
  if (line === state.status) return;
  state.status = line;
  post({ corral: 'status', text: line });
}

function watchdog() {
  post({ corral: 'watchdog' });
}

function stopping() {
  post({ corral: 'stopping' });
}

// Pings the watchdog every WATCHDOG_USEC / 2 from the event loop: a worker
// whose loop is stuck stops pinging and the agent replaces it.
function startWatchdog() {
  const every = watchdogInterval();
  if (!every || !send || state.watchdogTimer) return;
  state.watchdogTimer = setInterval(watchdog, every);
  state.watchdogTimer.unref();
}

// Calls `onReady` when the app itself sends 'ready' (process.send('ready')
// as with PM2's wait_ready): register.js then does not send it again.
function observeAppReady(onReady = () => {}) {
  if (!send) return;
  process.send = function sendObserved(message, ...rest) {
    if (message === 'ready' || (message && message.corral === 'ready')) {
      state.ready = true;
      onReady();
    }
    return send(message, ...rest);
  };
}

module.exports = {
  ready, status, watchdog, stopping, startWatchdog, observeAppReady,
  get hasChannel() { return send !== null; },
  get readySent() { return state.ready; },
};
