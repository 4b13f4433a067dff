//! AFL++ target: the event parser on arbitrary bytes (see the library for what it checks).
//! Built and run by tests/bench/fuzz.sh; to replay one input, `target/fuzz/release/intake <
//! FILE` (a crash prints the panic and aborts) or `target/fuzz/release/replay FILE...`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        std::hint::black_box(cmk_guard_fuzz::run(data));
    });
}
