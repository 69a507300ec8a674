// mimalloc rather than glibc's malloc: see Cargo.toml.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    codex_convert_proxy::cli::main()
}
