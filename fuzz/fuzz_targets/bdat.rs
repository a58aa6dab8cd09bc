#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smtp_server_rs_fuzz::targets::bdat(data);
});
