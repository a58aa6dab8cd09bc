'use strict';

/**
 * `server.options` after construction. smtp-server reads its options when it needs
 * them, so assigning `server.options.hidePIPELINING = true` on a running server applies
 * from the next command. Here the native side's options are computed again (by
 * `nativeOptions` in index.js, the one place that knows which it reads) when an option
 * is assigned or deleted through `server.options` (or the whole object is replaced);
 * reading them costs nothing extra per command.
 */

/**
 * Wraps the application's options object: a change to any option calls `changed()`
 * once the object holds the new value.
 */
function watchOptions(target, changed) {
  const after = done => {
    if (done) {
      changed();
    }
    return done;
  };
  return new Proxy(target, {
    set(t, key, value) {
      return after(Reflect.set(t, key, value));
    },
    deleteProperty(t, key) {
      return after(Reflect.deleteProperty(t, key));
    },
    defineProperty(t, key, descriptor) {
      return after(Reflect.defineProperty(t, key, descriptor));
    }
  });
}

/**
 * Gives `server` an `options` property holding `options` watched by `watchOptions`;
 * assigning a new object to `server.options` watches that one and calls `changed()`.
 */
function defineLiveOptions(server, options, changed) {
  let watched = watchOptions(options, changed);
  Object.defineProperty(server, 'options', {
    configurable: true,
    enumerable: true,
    get() {
      return watched;
    },
    set(value) {
      watched = watchOptions(value && typeof value === 'object' ? value : {}, changed);
      changed();
    }
  });
}

module.exports = { defineLiveOptions };
