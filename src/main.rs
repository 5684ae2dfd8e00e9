//! archsearch's entry point: parse the command line and run it (see `cli.rs`).
fn main() {
    std::process::exit(archsearch::cli::main());
}
