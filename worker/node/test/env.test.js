'use strict';
// lib/env.js: the agent's environment, read and checked.

const { test } = require('node:test');
const assert = require('node:assert');
const { parseDuration, inheritedSockets, watchdogInterval } = require('../lib/env');

test('durations in Go/Abseil syntax', () => {
  assert.equal(parseDuration('500ms', 'X'), 500);
  assert.equal(parseDuration('1s', 'X'), 1000);
  assert.equal(parseDuration('1.5s', 'X'), 1500);
  assert.equal(parseDuration('1m30s', 'X'), 90000);
  assert.equal(parseDuration('0', 'X'), 0);
  assert.equal(parseDuration('250us', 'X'), 0.25);
  for (const bad of ['', '1', 's', '1 s', '-1s', '1d', 'soon']) {
    assert.throws(() => parseDuration(bad, 'CORRAL_DRAIN_IDLE_WINDOW'),
      new RegExp(`CORRAL_DRAIN_IDLE_WINDOW="${bad}" is not a duration`));
  }
});

test('inherited sockets only when LISTEN_PID is this process', () => {
  const env = { LISTEN_FDS: '2', LISTEN_PID: '42', LISTEN_FDNAMES: 'web:admin' };
  assert.deepEqual(inheritedSockets(env, 42), [{ fd: 3, name: 'web' }, { fd: 4, name: 'admin' }]);
  assert.deepEqual(inheritedSockets(env, 43), []);
  assert.deepEqual(inheritedSockets({ LISTEN_FDS: '1', LISTEN_PID: '7' }, 7), [{ fd: 3, name: 'fd3' }]);
  assert.deepEqual(inheritedSockets({}, 7), []);
  assert.throws(() => inheritedSockets({ LISTEN_FDS: 'two', LISTEN_PID: '7' }, 7), /LISTEN_FDS="two"/);
});

test('watchdog interval: half of WATCHDOG_USEC, for this pid only', () => {
  assert.equal(watchdogInterval({ WATCHDOG_USEC: '2000000' }, 5), 1000);
  assert.equal(watchdogInterval({ WATCHDOG_USEC: '2000000', WATCHDOG_PID: '' }, 5), 1000);
  assert.equal(watchdogInterval({ WATCHDOG_USEC: '2000000', WATCHDOG_PID: '5' }, 5), 1000);
  assert.equal(watchdogInterval({ WATCHDOG_USEC: '2000000', WATCHDOG_PID: '6' }, 5), 0);
  assert.equal(watchdogInterval({}, 5), 0);
  assert.equal(watchdogInterval({ WATCHDOG_USEC: '0' }, 5), 0);
});
