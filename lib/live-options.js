'use strict';

/**
 * `server.options` after construction. smtp-server reads its options when it needs
 * them, so assigning `server.options.hidePIPELINING = true` on a running server applies
 * from the next command. Here the options the native side uses are copied over when
 * one of them is assigned or deleted through `server.options` (or the whole object is
 * replaced); reading them costs nothing extra per command.
 */

/** The option names the native side reads (see `nativeOptions` in index.js). */
const NATIVE_OPTIONS = new Set([
  'name',
  'banner',
  'lmtp',
  'heloResponse',
  'size',
  'hideSize',
  'rejectOversized',
  'hidePIPELINING',
  'hide8BITMIME',
  'hideSMTPUTF8',
  'hideENHANCEDSTATUSCODES',
  'hideDSN',
  'hideREQUIRETLS',
  'hideSTARTTLS',
  'hideCHUNKING',
  'hideBINARYMIME',
  'disabledCommands',
  'authMethods',
  'authOptional',
  'allowInsecureAuth',
  'authRequiredMessage',
  'maxRecipients',
  'maxCommandLength',
  'maxClients',
  'socketTimeout',
  'closeTimeout',
  'maxAllowedUnauthenticatedCommands',
  'lenientAddressParsing',
  'rejectBareLineEndings',
  'strictPipelining',
  'secure',
  'secured',
  'needsUpgrade',
  'useXClient',
  'useXForward',
  'SNICallback',
  'useProxy',
  'disableReverseLookup',
  'logger'
]);

/**
 * Wraps the application's options object: a change to an option in `NATIVE_OPTIONS`
 * calls `changed()` once the object holds the new value.
 */
function watchOptions(target, changed) {
  const after = (done, key) => {
    if (done && NATIVE_OPTIONS.has(key)) {
      changed();
    }
    return done;
  };
  return new Proxy(target, {
    set(t, key, value) {
      return after(Reflect.set(t, key, value), key);
    },
    deleteProperty(t, key) {
      return after(Reflect.deleteProperty(t, key), key);
    },
    defineProperty(t, key, descriptor) {
      return after(Reflect.defineProperty(t, key, descriptor), key);
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

module.exports = { defineLiveOptions, NATIVE_OPTIONS };
