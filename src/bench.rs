//! `kiln bench`: import and read throughput on SQLite and PostgreSQL.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> crate::cli::CliResult {
    Err("the benchmark is not built yet".into())
}
