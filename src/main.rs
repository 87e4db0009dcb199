//! The `appproxy_exporter` binary: parse flags, set up logging, load the config, hand over to
//! the library, and turn the outcome into an exit code (2 for a config error).

use std::process::ExitCode;

use appproxy_exporter::cli::{Cli, Command, version_text};
use appproxy_exporter::inventory::graph::login::{LoginError, login};
use appproxy_exporter::{Error, config, logging};
use clap::Parser;

#[cfg(windows)]
mod winsvc;

fn main() -> ExitCode {
    appproxy_exporter::memory::tune_allocator();
    let cli = Cli::parse();
    if cli.version {
        print!("{}", version_text());
        return ExitCode::SUCCESS;
    }
    if matches!(cli.command, Some(Command::Service { .. })) {
        return service(cli);
    }
    if let Err(error) = logging::init(cli.log_level, cli.log_format) {
        eprintln!("{}", Error::from(error));
        return ExitCode::FAILURE;
    }
    let loaded = match config::load(cli.config_file.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => return exit(&Error::Config(error)),
    };
    match &cli.command {
        Some(Command::CheckConfig) => {
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{loaded}: the configuration is valid");
            ExitCode::SUCCESS
        }
        Some(Command::Diagnose { app, output, .. }) => {
            let runtime = match runtime() {
                Ok(runtime) => runtime,
                Err(code) => return code,
            };
            let runbooks = cli.web_paths().runbooks();
            let diagnosis = appproxy_exporter::diagnose(loaded, app.as_deref(), *output, &runbooks);
            match runtime.block_on(diagnosis) {
                Ok(code) => ExitCode::from(code),
                Err(error) => exit(&error),
            }
        }
        Some(Command::Login) => {
            let runtime = match runtime() {
                Ok(runtime) => runtime,
                Err(code) => return code,
            };
            let mut stdout = std::io::stdout();
            match runtime.block_on(login(&loaded.settings, &mut stdout)) {
                Ok(_) => ExitCode::SUCCESS,
                Err(LoginError::NotDeviceCode) => {
                    eprintln!("{}", LoginError::NotDeviceCode);
                    ExitCode::from(2)
                }
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Service { .. }) => unreachable!("handled before logging is set up"),
        Some(Command::Serve { .. }) | None => {
            let options = cli.serve_options();
            let runtime = match runtime() {
                Ok(runtime) => runtime,
                Err(code) => return code,
            };
            let served = runtime.block_on(appproxy_exporter::serve(loaded, options));
            // A read still hanging on a share must not hold up the exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => exit(&error),
            }
        }
    }
}

fn exit(error: &Error) -> ExitCode {
    eprintln!("{error}");
    match error {
        Error::Config(_) | Error::WebConfig(_) | Error::SystemdSocket(_) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

/// `service`: under the Service Control Manager, logging to the event log.
#[cfg(windows)]
fn service(cli: Cli) -> ExitCode {
    if let Err(error) = logging::init_eventlog(cli.log_level) {
        eprintln!("{}", Error::from(error));
        return ExitCode::FAILURE;
    }
    let loaded = match config::load(cli.config_file.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => {
            tracing::error!(%error, "the configuration is not valid");
            return ExitCode::from(2);
        }
    };
    match winsvc::run(loaded, cli.serve_options()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Started by hand rather than by the Service Control Manager, most likely.
            eprintln!(
                "cannot run as a Windows service ({error}); without `service` it runs in this console"
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(windows))]
fn service(_cli: Cli) -> ExitCode {
    eprintln!(
        "the service subcommand runs the exporter as a Windows service; elsewhere run it without a subcommand (systemd: deploy/systemd/)"
    );
    ExitCode::from(2)
}

/// The async runtime for the subcommands that need one.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|error| exit(&Error::Server(error)))
}
