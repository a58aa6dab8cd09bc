//! The SMTP protocol without I/O: parsers, reply formatting and the session state machine.

pub mod address;
pub mod config;
pub mod data;
pub mod host;
pub mod js_string;
pub mod proxy;
pub mod punycode;
pub mod reply;
pub mod sasl;
pub mod session;
pub mod xclient;
pub mod xtext;
