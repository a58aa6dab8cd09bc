'use strict';
// 'smtp-server-rs/lib/types' holds types only (as smtp-server's lib/types does): see index.d.ts.
module.exports = {};
