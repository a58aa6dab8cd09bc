'use strict';
// The deep import smtp-server users have: require('smtp-server-rs/lib/smtp-server')
// (or 'smtp-server-rs/lib/smtp-server.js') gives the same module as the package itself.
module.exports = require('../index.js');
