// CommonJS code in a project compiled with module resolution node16/nodenext.
import smtp = require('smtp-server');
import { SMTPServer } from 'smtp-server';

const a = new smtp.SMTPServer({ disabledCommands: ['AUTH'] });
const b: smtp.SMTPServer = new SMTPServer({ lmtp: true });
a.listen(0);
b.close();
