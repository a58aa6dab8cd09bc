'use strict';
// An SMTP server whose live counters (server.stats()) are served to Prometheus in its
// text exposition format on http://HOST:METRICS_PORT/metrics.
//
// Run:
//   node examples/prometheus-stats.js                 (SMTP on 2525, metrics on 9465)
//   PORT=0 METRICS_PORT=0 node examples/prometheus-stats.js   (free ports, printed)
// Scrape config:
//   scrape_configs: [{ job_name: smtp, static_configs: [{ targets: ['127.0.0.1:9465'] }] }]
const http = require('node:http');
const { SMTPServer } = require('..'); // in your project: require('smtp-server-rs')

const host = process.env.HOST || '127.0.0.1';
const port = process.env.PORT ? Number(process.env.PORT) : 2525;
const metricsPort = process.env.METRICS_PORT ? Number(process.env.METRICS_PORT) : 9465;

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  onData(stream, session, callback) {
    stream.resume(); // a sink: read and drop
    stream.on('end', () => callback());
  }
});
server.on('error', err => console.error('server error:', err.message));

// name, type, help, and the field of server.stats()
const METRICS = [
  ['smtp_connections', 'gauge', 'Connections open now', 'connections'],
  ['smtp_connections_total', 'counter', 'Connections accepted', 'connectionsTotal'],
  ['smtp_messages_accepted_total', 'counter', 'Messages answered with 2xx', 'messagesAccepted'],
  ['smtp_messages_rejected_total', 'counter', 'Messages refused', 'messagesRejected'],
  ['smtp_received_bytes_total', 'counter', 'Bytes read from clients', 'bytesReceived'],
  ['smtp_sent_bytes_total', 'counter', 'Bytes written to clients', 'bytesSent'],
  ['smtp_tls_handshakes_total', 'counter', 'TLS handshakes completed', 'tlsHandshakes'],
  ['smtp_tls_failures_total', 'counter', 'TLS handshakes failed', 'tlsFailures'],
  ['smtp_errors_total', 'counter', 'Connection errors', 'errors']
];

/** The counters in Prometheus' text format (version 0.0.4). */
function exposition(stats) {
  return METRICS.map(([name, type, help, field]) => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${stats[field]}\n`).join('');
}

const metrics = http.createServer((req, res) => {
  if (req.url !== '/metrics') {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
  res.end(exposition(server.stats()));
});

server.listen(port, host, () => {
  metrics.listen(metricsPort, host, () => {
    console.log(`SMTP server listening on ${host}:${server.server.address().port}, metrics on http://${host}:${metrics.address().port}/metrics`);
  });
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    metrics.close();
    server.close(() => process.exit(0));
  });
}
