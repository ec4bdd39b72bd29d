fn main() -> std::process::ExitCode {
    hugflake::main()
}
