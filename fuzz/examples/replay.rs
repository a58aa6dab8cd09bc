//! The stable fuzz runner: replays the corpus (and committed regression inputs) of each
//! target, then runs seeded random mutants of them for a bounded time. Needs neither
//! nightly nor libFuzzer, so CI can run it anywhere.
//!
//! ```text
//! replay [--seconds S] [--iterations N] [--seed X] [--timeout S] [TARGET...]
//! replay TARGET FILE...        run the given inputs only (reproduce a crash)
//! ```
//!
//! S seconds (default 10) or N mutants (whichever ends first) per target. A failing input
//! is written to `fuzz/artifacts/<target>/` and its path printed; the exit status is 1.
//! An input that runs longer than the timeout (default 10 s) counts as a failure too.

use std::path::{Path, PathBuf};
use std::process::exit;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_server_rs_fuzz::mutate::{mutate, XorShift};
use smtp_server_rs_fuzz::targets::{run, TARGETS};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn max_len(target: &str) -> usize {
    match target {
        "data_decoder" => 8192,
        "address" | "sasl" => 1024,
        _ => 4096,
    }
}

/// The files directly inside `dir`, sorted (none when it does not exist).
fn read_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|d| (p, d)))
        .collect()
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes a failing input where libFuzzer would, and says how to run it again.
fn save_failure(target: &str, kind: &str, data: &[u8]) -> ! {
    let dir = fuzz_dir().join("artifacts").join(target);
    let path = dir.join(format!("{kind}-{:016x}", fnv(data)));
    let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, data));
    match saved {
        Ok(()) => {
            eprintln!(
                "replay: {target}: {kind}; input written to {}",
                path.display()
            );
            eprintln!(
                "replay: reproduce with: cargo run --release --manifest-path fuzz/Cargo.toml --example replay -- {target} {}",
                path.display()
            );
        }
        Err(e) => {
            eprintln!("replay: {target}: {kind}; could not write the input: {e}; it was {data:?}")
        }
    }
    exit(1);
}

/// The input running now, for the watchdog.
struct Current {
    target: &'static str,
    data: Vec<u8>,
    since: Instant,
}

struct Runner {
    current: Arc<Mutex<Current>>,
}

impl Runner {
    fn new(timeout: Duration) -> Runner {
        let current = Arc::new(Mutex::new(Current {
            target: "",
            data: Vec::new(),
            since: Instant::now(),
        }));
        let watched = Arc::clone(&current);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(250));
            let Ok(cur) = watched.lock() else { return };
            if !cur.target.is_empty() && cur.since.elapsed() > timeout {
                save_failure(cur.target, "timeout", &cur.data);
            }
        });
        Runner { current }
    }

    /// Runs one input; a failure saves it and ends the process.
    fn one(&self, target: &'static str, data: &[u8]) {
        if let Ok(mut cur) = self.current.lock() {
            cur.target = target;
            cur.data.clear();
            cur.data.extend_from_slice(data);
            cur.since = Instant::now();
        }
        let ok = std::panic::catch_unwind(|| run(target, data)).is_ok();
        if let Ok(mut cur) = self.current.lock() {
            cur.target = "";
        }
        if !ok {
            save_failure(target, "crash", data);
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: replay [--seconds S] [--iterations N] [--seed X] [--timeout S] [TARGET...]");
    eprintln!("       replay TARGET FILE...");
    eprintln!("targets: {}", TARGETS.join(" "));
    exit(2);
}

fn number(v: Option<String>) -> u64 {
    v.and_then(|s| s.parse().ok()).unwrap_or_else(|| usage())
}

fn main() {
    let mut seconds = 10u64;
    let mut iterations = u64::MAX;
    let mut seed = 1u64;
    let mut timeout = 10u64;
    let mut names: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = number(args.next()),
            "--iterations" => iterations = number(args.next()),
            "--seed" => seed = number(args.next()),
            "--timeout" => timeout = number(args.next()),
            "-h" | "--help" => usage(),
            _ => names.push(arg),
        }
    }
    let runner = Runner::new(Duration::from_secs(timeout.max(1)));
    let lookup = |name: &str| TARGETS.iter().copied().find(|t| *t == name);

    // `replay TARGET FILE...`: the given inputs only
    if names.len() >= 2 && lookup(&names[0]).is_some() && lookup(&names[1]).is_none() {
        let target = lookup(&names[0]).unwrap_or_else(|| usage());
        for file in &names[1..] {
            let data = std::fs::read(file).unwrap_or_else(|e| {
                eprintln!("replay: {file}: {e}");
                exit(2);
            });
            runner.one(target, &data);
            println!("replay: {target}: {file}: ok");
        }
        return;
    }

    let targets: Vec<&'static str> = if names.is_empty() {
        TARGETS.to_vec()
    } else {
        names
            .iter()
            .map(|n| {
                lookup(n).unwrap_or_else(|| {
                    eprintln!("replay: unknown target {n}");
                    usage()
                })
            })
            .collect()
    };

    for target in targets {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for dir in ["corpus", "regressions"] {
            for (_, data) in read_dir(&fuzz_dir().join(dir).join(target)) {
                inputs.push(data);
            }
        }
        let started = Instant::now();
        for data in &inputs {
            runner.one(target, data);
        }
        if inputs.is_empty() {
            inputs.push(Vec::new());
        }
        let mut rng = XorShift::new(seed ^ fnv(target.as_bytes()));
        let mut recent: Vec<Vec<u8>> = Vec::new();
        let deadline = started + Duration::from_secs(seconds);
        let limit = max_len(target);
        let mut count = 0u64;
        while count < iterations && (!count.is_multiple_of(64) || Instant::now() < deadline) {
            let base = if !recent.is_empty() && rng.below(2) == 0 {
                &recent[rng.below(recent.len())]
            } else {
                &inputs[rng.below(inputs.len())]
            };
            let other = &inputs[rng.below(inputs.len())];
            let m = mutate(&mut rng, base, other, limit);
            runner.one(target, &m);
            if recent.len() < 256 {
                recent.push(m);
            } else {
                let i = rng.below(recent.len());
                recent[i] = m;
            }
            count += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "replay: {target}: {} corpus inputs, {count} mutants in {secs:.1} s ({:.0}/s), no failures",
            inputs.len(),
            count as f64 / secs.max(1e-9)
        );
    }
}
