#[derive(Debug, clap::Args)]
pub struct StopArgs {}
#[derive(Debug, clap::Args)]
pub struct StartArgs {}
#[derive(Debug, clap::Args)]
pub struct DownArgs {}
#[derive(Debug, clap::Args)]
pub struct AutostopArgs {}

pub fn stop(_args: StopArgs) -> crate::output::CommandResult {
    super::not_yet("stop")
}
pub fn start(_args: StartArgs) -> crate::output::CommandResult {
    super::not_yet("start")
}
pub fn down(_args: DownArgs) -> crate::output::CommandResult {
    super::not_yet("down")
}
pub fn autostop(_args: AutostopArgs) -> crate::output::CommandResult {
    super::not_yet("autostop")
}
