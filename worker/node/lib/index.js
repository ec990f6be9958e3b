'use strict';
// @corral/node: run a Node app under corral-agent. See README.md.
//
//   const corral = require('@corral/node');
//   await corral.listen(server);      // the agent's socket, or $PORT alone
//   corral.ready();                   // READY: the agent routes to us
//   corral.status('serving');         // shown by corralctl status
//   corral.onShutdown(() => redis.quit());   // after the drain, before exit
//
// Under `corral-agent --ready=ipc`; without the agent every call still
// works (listen uses $PORT, the notifications are no-ops).

const notify = require('./notify');
const drain = require('./drain');
const { listen } = require('./listen');
const { intEnv, parseDuration } = require('./env');

const workerId = intEnv('CORRAL_WORKER_ID', process.env);
const generation = intEnv('CORRAL_WORKER_GENERATION', process.env);

notify.startWatchdog();

module.exports = {
  listen,
  ready: notify.ready,
  status: notify.status,
  watchdog: notify.watchdog,
  drain: drain.register,
  onShutdown: drain.onShutdown,
  shutdown: drain.shutdown,
  parseDuration,
  // Slot of this worker (0, 1, ...; stable across restarts, like PM2's
  // NODE_APP_INSTANCE), or null when not under corral.
  workerId,
  // 1 for the first process of this slot, +1 on every restart or reload.
  generation,
  underCorral: workerId !== null,
  get draining() { return drain.draining; },
};
