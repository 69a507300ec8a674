fn main() -> std::process::ExitCode {
    codex_convert_proxy::cli::main()
}
