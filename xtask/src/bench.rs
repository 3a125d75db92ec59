//! `cargo xtask bench`: placeholder until the benchmark lands.

pub fn main(_args: &[String]) -> Result<(), String> {
    Err("the benchmark is not written yet".into())
}
