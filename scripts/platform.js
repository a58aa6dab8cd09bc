'use strict';
// The platform name of the native binary: linux-x64-gnu, linux-arm64-musl, darwin-arm64,
// win32-x64-msvc, ... It names both the local build (smtp-server-rs.<name>.node) and the
// prebuilt package (smtp-server-rs-<name>, see npm/).
const { existsSync, readFileSync } = require('node:fs');

let muslCache;

// glibc or musl: the process report tells which C library the runtime itself was linked
// against; /usr/bin/ldd (a script on glibc, a link to the musl loader on musl) and
// /etc/alpine-release decide when there is no report.
function isMusl() {
  if (process.platform !== 'linux') {
    return false;
  }
  if (muslCache !== undefined) {
    return muslCache;
  }
  muslCache = detectMusl();
  return muslCache;
}

function detectMusl() {
  try {
    if (process.report && typeof process.report.getReport === 'function') {
      // the network part of the report does reverse lookups on some systems: skip it, and
      // leave the setting as it was for the application's own reports
      const exclude = process.report.excludeNetwork;
      process.report.excludeNetwork = true;
      let report;
      try {
        report = process.report.getReport();
      } finally {
        process.report.excludeNetwork = exclude;
      }
      const header = report && (typeof report === 'string' ? JSON.parse(report).header : report.header);
      if (header && 'glibcVersionRuntime' in header) {
        return !header.glibcVersionRuntime;
      }
      if (header && Array.isArray(report.sharedObjects)) {
        return report.sharedObjects.some(f => f.includes('libc.musl-') || f.includes('ld-musl-'));
      }
    }
  } catch {
    // fall through to the file system
  }
  try {
    const ldd = readFileSync('/usr/bin/ldd', 'latin1');
    if (ldd.includes('musl')) {
      return true;
    }
    if (ldd.includes('GNU C Library') || ldd.includes('glibc')) {
      return false;
    }
  } catch {
    // no ldd
  }
  return existsSync('/etc/alpine-release');
}

function platformTriple() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    if (arch === 'arm') {
      return `linux-arm-${isMusl() ? 'musleabihf' : 'gnueabihf'}`;
    }
    return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  }
  if (platform === 'win32') {
    return `win32-${arch}-msvc`;
  }
  return `${platform}-${arch}`;
}

// The platforms with a prebuilt package: npm/<triple>/ and the Rust target that builds it.
const TARGETS = {
  'linux-x64-gnu': { rust: 'x86_64-unknown-linux-gnu', os: 'linux', cpu: 'x64', libc: 'glibc' },
  'linux-x64-musl': { rust: 'x86_64-unknown-linux-musl', os: 'linux', cpu: 'x64', libc: 'musl' },
  'linux-arm64-gnu': { rust: 'aarch64-unknown-linux-gnu', os: 'linux', cpu: 'arm64', libc: 'glibc' },
  'linux-arm64-musl': { rust: 'aarch64-unknown-linux-musl', os: 'linux', cpu: 'arm64', libc: 'musl' },
  'darwin-x64': { rust: 'x86_64-apple-darwin', os: 'darwin', cpu: 'x64' },
  'darwin-arm64': { rust: 'aarch64-apple-darwin', os: 'darwin', cpu: 'arm64' },
  'win32-x64-msvc': { rust: 'x86_64-pc-windows-msvc', os: 'win32', cpu: 'x64' }
};

module.exports = { platformTriple, isMusl, TARGETS };
