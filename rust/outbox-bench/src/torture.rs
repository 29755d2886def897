//! placeholder
use clap::Args;
#[derive(Args, Debug)]
pub struct TortureArgs {}
#[derive(Args, Debug)]
pub struct ChildArgs {}
pub fn run(_: &TortureArgs) -> i32 { eprintln!("torture: not implemented yet"); 2 }
pub fn child(_: &ChildArgs) -> i32 { 2 }
