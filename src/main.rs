//! The `amlprobe` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    amlprobe::main()
}
