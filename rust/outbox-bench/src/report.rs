//! placeholder
use clap::Args;
#[derive(Args, Debug)]
pub struct ReportArgs {}
pub fn run(_: &ReportArgs) -> i32 { eprintln!("report: not implemented yet"); 2 }
