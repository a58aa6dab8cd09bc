'use strict';

const util = require('node:util');

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

function noop() {
  // logging is off
}

function timestamp() {
  return new Date().toISOString().substr(0, 19).replace(/T/, ' ');
}

/**
 * Builds the `{trace, debug, info, warn, error, fatal}` logger smtp-server uses:
 * no-ops when `logger` is falsy, console output when it is `true`, and a
 * bunyan/pino-style object called as `logger[level](entry, format, ...args)` otherwise.
 */
function createLogger(options, component) {
  const logger = options.logger;
  const out = {};
  if (!logger) {
    for (const level of LEVELS) {
      out[level] = noop;
    }
    return out;
  }
  if (logger === true) {
    for (const level of LEVELS) {
      out[level] = (entry, ...args) => {
        const cid = entry && entry.cid ? `[#${entry.cid}] ` : '';
        const text = util.format(...args);
        for (const line of String(text).split(/\r?\n/)) {
          console.log('[%s] %s %s%s', timestamp(), level.toUpperCase(), cid, line);
        }
      };
    }
    return out;
  }
  const fallback = ['info', 'debug', 'log', 'trace', 'warn', 'error'].find(name => typeof logger[name] === 'function');
  for (const level of LEVELS) {
    const method = typeof logger[level] === 'function' ? level : fallback;
    out[level] = method
      ? (entry, ...args) => {
          const data = Object.assign({ component }, entry || {});
          delete data.level;
          logger[method](data, ...args);
        }
      : noop;
  }
  return out;
}

module.exports = { createLogger };
