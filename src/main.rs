//! The `kiln` binary; everything lives in the library (`kiln::cli`).

/// mimalloc gives freed memory back to the system; glibc's malloc kept the peak of large
/// request bodies for the life of the process (figures in docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kiln::cli::main()
}
