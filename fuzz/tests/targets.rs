//! Quick checks of the fuzz harness itself: the reference un-stuffing agrees with the
//! documented cases, and every committed input passes its target.

use std::path::PathBuf;

use smtp_server_rs_fuzz::protocol::js_string::command_name;
use smtp_server_rs_fuzz::protocol::session::Command;
use smtp_server_rs_fuzz::targets::{reference_base64, reference_unstuff, run, TARGETS};

#[test]
fn reference_unstuff_cases() {
    let cases: &[(&[u8], &[u8], usize, bool)] = &[
        (b".\r\n", b"", 3, true),
        (b"a\r\n.\r\nrest", b"a\r\n", 6, true),
        (b"..a\r\n..\r\n.\r\n", b".a\r\n.\r\n", 12, true),
        (b".a\r\n.\r\n", b".a\r\n", 7, true),
        (b"a\n.\r\n", b"a\n.\r\n", 5, false),
        (b"a\r\n.", b"a\r\n", 4, false),
        (b"a\r\n.\r", b"a\r\n", 5, false),
        (b"a\r\n.\rb", b"a\r\n.\rb", 6, false),
        (b"", b"", 0, false),
    ];
    for (input, out, consumed, done) in cases {
        assert_eq!(
            reference_unstuff(input),
            (out.to_vec(), *consumed, *done),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn reference_base64_cases() {
    let cases: &[(&str, &[u8])] = &[
        ("", b""),
        ("AGFAYg==", b"\0a@b"),
        ("dXNlcg", b"user"),
        ("dXN lc g=", b"user"),
        ("-_-_", b"\xfb\xff\xbf"),
        ("+/+/", b"\xfb\xff\xbf"),
        ("QQ=QUFB", b"A"),
        ("Q", b""),
        ("*!", b""),
    ];
    for (input, out) in cases {
        assert_eq!(reference_base64(input), out.to_vec(), "{input:?}");
    }
}

#[test]
fn committed_inputs_pass() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for target in TARGETS {
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for entry in entries.flatten() {
                let data = std::fs::read(entry.path()).expect("readable input");
                assert!(run(target, &data));
                count += 1;
            }
        }
    }
    assert!(count > 70, "only {count} committed inputs");
}

/// The session target's committed corpus and the libFuzzer dictionary name every command
/// the session has a handler for, so that each run starts from inputs that reach all of
/// them.
#[test]
fn session_corpus_reaches_every_command() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/session");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(dir).expect("session corpus").flatten() {
        let data = std::fs::read(entry.path()).expect("readable input");
        // two option bytes and a seed byte come first
        let input = String::from_utf8_lossy(data.get(3..).unwrap_or_default()).into_owned();
        for line in input.split('\n') {
            if let Some(command) = Command::parse(&command_name(line.trim_end_matches('\r'))) {
                if !seen.contains(&command) {
                    seen.push(command);
                }
            }
        }
    }
    let missing: Vec<_> = Command::ALL
        .into_iter()
        .filter(|c| !seen.contains(c))
        .map(Command::name)
        .collect();
    assert!(missing.is_empty(), "no corpus input sends {missing:?}");
    let dict =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dict/smtp.dict"))
            .expect("dictionary");
    for command in Command::ALL {
        assert!(
            dict.lines()
                .any(|l| l.starts_with(&format!("\"{}", command.name()))),
            "the dictionary lacks {}",
            command.name()
        );
    }
}
