#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> crate::output::CommandResult {
    super::not_yet("cost-report")
}
