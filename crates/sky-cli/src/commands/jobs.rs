#[derive(Debug, clap::Args)]
pub struct QueueArgs {}
#[derive(Debug, clap::Args)]
pub struct LogsArgs {}
#[derive(Debug, clap::Args)]
pub struct CancelArgs {}

pub fn queue(_args: QueueArgs) -> crate::output::CommandResult {
    super::not_yet("queue")
}
pub fn logs(_args: LogsArgs) -> crate::output::CommandResult {
    super::not_yet("logs")
}
pub fn cancel(_args: CancelArgs) -> crate::output::CommandResult {
    super::not_yet("cancel")
}
