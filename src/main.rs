//! The `mimi-onion` command line.
fn main() {}
