// The `import x = require()` form with type references through the module object.
import smtp = require('smtp-server');

const server: smtp.SMTPServer = new smtp.SMTPServer({
  secure: false,
  authOptional: true,
  onData(stream: smtp.SMTPServerDataStream, session: smtp.SMTPServerSession, callback: (err?: Error | null) => void) {
    stream.resume();
    stream.on('end', () => callback());
  }
});

const moreOptions: smtp.SMTPServerOptions = { closeTimeout: 1000 };
console.log(moreOptions.closeTimeout, server.options.closeTimeout);

server.listen(2525);
server.close();
