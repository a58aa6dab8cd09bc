//! The commands a session knows, parsed once from the command name.

use crate::protocol::reply::Esc;

/// A command the session has a handler for (smtp-server's `handler_VERB`, and BDAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `HELO hostname`.
    Helo,
    /// `EHLO hostname`.
    Ehlo,
    /// `LHLO hostname` (LMTP; answered as EHLO).
    Lhlo,
    /// `QUIT`.
    Quit,
    /// `NOOP`.
    Noop,
    /// `RSET`.
    Rset,
    /// `HELP`.
    Help,
    /// `VRFY address`.
    Vrfy,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH mechanism [initial-response]`.
    Auth,
    /// `MAIL FROM:<address> [parameters]`.
    Mail,
    /// `RCPT TO:<address> [parameters]`.
    Rcpt,
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (CHUNKING).
    Bdat,
    /// `WIZ password` (smtp-server's joke command).
    Wiz,
    /// `SHELL` (smtp-server's joke command).
    Shell,
    /// `KILL` (smtp-server's joke command).
    Kill,
    /// `XCLIENT attribute=value...`.
    XClient,
    /// `XFORWARD attribute=value...`.
    XForward,
}

impl Command {
    /// Every command, in no particular order.
    pub const ALL: [Command; 19] = [
        Command::Helo,
        Command::Ehlo,
        Command::Lhlo,
        Command::Quit,
        Command::Noop,
        Command::Rset,
        Command::Help,
        Command::Vrfy,
        Command::StartTls,
        Command::Auth,
        Command::Mail,
        Command::Rcpt,
        Command::Data,
        Command::Bdat,
        Command::Wiz,
        Command::Shell,
        Command::Kill,
        Command::XClient,
        Command::XForward,
    ];

    /// The command an upper-cased command name (see
    /// [`command_name`](crate::protocol::js_string::command_name)) stands for.
    pub fn parse(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The command's name as the client writes it (upper case), as listed in
    /// `disabledCommands`.
    pub fn name(self) -> &'static str {
        match self {
            Command::Helo => "HELO",
            Command::Ehlo => "EHLO",
            Command::Lhlo => "LHLO",
            Command::Quit => "QUIT",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Help => "HELP",
            Command::Vrfy => "VRFY",
            Command::StartTls => "STARTTLS",
            Command::Auth => "AUTH",
            Command::Mail => "MAIL",
            Command::Rcpt => "RCPT",
            Command::Data => "DATA",
            Command::Bdat => "BDAT",
            Command::Wiz => "WIZ",
            Command::Shell => "SHELL",
            Command::Kill => "KILL",
            Command::XClient => "XCLIENT",
            Command::XForward => "XFORWARD",
        }
    }

    /// The enhanced status code context smtp-server gives the replies that refuse a
    /// command line before its handler: none for the HELO/EHLO/LHLO family, the
    /// default otherwise (also for a line whose command is unknown, `None`).
    pub fn refusal_esc(command: Option<Command>) -> Esc {
        match command {
            Some(Command::Helo | Command::Ehlo | Command::Lhlo) => Esc::Never,
            _ => Esc::Default,
        }
    }

    /// A command that opens or carries a mail transaction: it needs a HELO first and,
    /// where authentication is required, a login.
    pub fn is_transaction(self) -> bool {
        matches!(
            self,
            Command::Mail | Command::Rcpt | Command::Data | Command::Bdat
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Command;

    #[test]
    fn names_round_trip() {
        for command in Command::ALL {
            assert_eq!(Command::parse(command.name()), Some(command));
        }
        assert_eq!(Command::parse("ehlo"), None);
        assert_eq!(Command::parse("EHLO\tFOO"), None);
        assert_eq!(Command::parse(""), None);
    }
}
