//! `sky check`: which clouds this build can use now, and why (the local cloud always). Each
//! provider checks its credentials against its cloud (all at once); `--offline` skips that.

use std::io::Write as _;
use std::process::ExitCode;

use crate::output::{CommandResult, Format};
use crate::session::{open_sky, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
    /// Only look at the credentials Sky has; do not ask the clouds whether they work.
    #[arg(long)]
    pub offline: bool,
}

pub fn run(args: Args) -> CommandResult {
    let json = args.output == Format::Json;
    let sky = open_sky(json)?;
    let clouds = if args.offline {
        sky.check()
    } else {
        runtime()?.block_on(sky.verify_clouds())
    };
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::json!({ "clouds": clouds }))?;
    } else {
        for c in &clouds {
            let mark = if c.enabled { "enabled " } else { "disabled" };
            writeln!(out, "  {}: {mark}  {}", c.cloud.display_name(), c.reason)?;
        }
        let enabled: Vec<&str> = clouds
            .iter()
            .filter(|c| c.enabled)
            .map(|c| c.cloud.display_name())
            .collect();
        writeln!(out, "\nEnabled clouds: {}", enabled.join(", "))?;
    }
    Ok(ExitCode::SUCCESS)
}
