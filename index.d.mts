// Types of the ES module entry (index.mjs): the same as index.d.ts, whose `export default`
// is the `{ SMTPServer }` object that smtp-server 3.21 also exports by default.
export * from './index.js';
export { default } from './index.js';
