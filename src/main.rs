//! The `barong` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    barong::memory::tune_allocator();
    barong::cli::main()
}
