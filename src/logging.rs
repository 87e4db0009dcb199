//! Logging set-up, the Prometheus way: `--log.level` and `--log.format` (logfmt or json),
//! written to standard error.

use clap::ValueEnum;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
pub fn init(level: LogLevel, format: LogFormat) -> crate::Result<()> {
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
    result.map_err(|e| crate::Error::Logging(e.to_string()))
}

/// Logs to the Windows event log (source `appproxy_exporter`), for the service.
#[cfg(windows)]
pub fn init_eventlog(level: LogLevel) -> crate::Result<()> {
    let filter = level.filter();
    let layer = tracing_layer_win_eventlog::EventLogLayer::new("appproxy_exporter")
        .map_err(|e| crate::Error::Logging(e.to_string()))?;
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init()
        .map_err(|e| crate::Error::Logging(e.to_string()))
}
