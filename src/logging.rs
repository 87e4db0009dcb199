//! Logging set-up, the Prometheus way: `--log.level` and `--log.format` (logfmt or json),
//! written to standard error; as a Windows service, to the event log.

use clap::ValueEnum;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Why the log could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error(transparent)]
    Install(#[from] tracing_subscriber::util::TryInitError),
    #[error(transparent)]
    EventLog(#[from] crate::platform::event_log::LogError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

impl LogLevel {
    fn filter(self) -> LevelFilter {
        match self {
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Error => LevelFilter::ERROR,
        }
    }
}

/// Installs the global subscriber; call once, first thing.
pub fn init(level: LogLevel, format: LogFormat) -> Result<(), LoggingError> {
    let filter = level.filter();
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .with_span_name(false)
                    .with_span_path(false)
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    Ok(result?)
}

/// Logs to the Windows event log (source `appproxy_exporter`), for the service; elsewhere
/// there is no event log, and the error says so.
pub fn init_eventlog(level: LogLevel) -> Result<(), LoggingError> {
    Ok(crate::platform::event_log::install_log(
        "appproxy_exporter",
        level.filter(),
    )?)
}
