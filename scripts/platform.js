'use strict';
// The platform name of the native binary: linux-x64-gnu, darwin-arm64, win32-x64-msvc, ...
const { existsSync } = require('node:fs');

function isMusl() {
  if (process.platform !== 'linux') {
    return false;
  }
  try {
    const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null;
    if (report && report.header) {
      return !report.header.glibcVersionRuntime;
    }
  } catch {
    // fall through
  }
  return existsSync('/etc/alpine-release');
}

function platformTriple() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  }
  if (platform === 'win32') {
    return `win32-${arch}-msvc`;
  }
  return `${platform}-${arch}`;
}

module.exports = { platformTriple };
