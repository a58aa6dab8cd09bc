// The ES module entry: the CommonJS module itself, so that `import` and `require` share
// one SMTPServer class (no dual-package hazard).
//   import { SMTPServer } from 'smtp-server-rs';
//   import smtpServer from 'smtp-server-rs';   // { SMTPServer }, as in smtp-server 3.21
import { createRequire } from 'node:module';

const cjs = createRequire(import.meta.url)('./index.js');

export const SMTPServer = cjs.SMTPServer;
export default cjs;
