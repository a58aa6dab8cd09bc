'use strict';

// Memory that comes back (scripts/memory.js; `npm run memory` also runs a 200 MB message
// to a server with `size`): a 200 MB message, a 100 MB message of random bytes, 10,000
// idle connections and 20,000 messages, one after the other against a server in its own
// process. After each burst, once the clients are gone and a garbage collection has run,
// the server's RSS is back within max(32 MiB, 25% of the burst's growth) of its
// baseline. (Before the addon gave freed memory back, a Node process kept 60-80 MiB.)

const test = require('node:test');
const assert = require('node:assert/strict');

const { IS_REF } = require('./helpers/smtp-client.js');
const { canMeasure } = require('./helpers/child-server.js');
const { measure } = require('../scripts/memory.js');

test('after each burst the server process returns its memory', { timeout: 240000, skip: (IS_REF && 'smtp-server un-stuffs a dot after a bare LF (difference 1): the binary message would not match') || (!canMeasure() && 'needs /proc (Linux)') }, async () => {
    const report = await measure({ only: ['200mb', '100mb-binary', '10k-idle', 'soak'] });
    assert.equal(report.runs.length, 4);
    assert.deepEqual(report.problems, []);
});
