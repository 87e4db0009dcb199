//! `serve`: bind the listener, start the prober, answer HTTP until SIGTERM or Ctrl-C, and
//! reload the config on SIGHUP.

use std::sync::Arc;

use tokio::net::TcpListener;

use std::io::IsTerminal;

use crate::cli::Output;
use crate::config::Loaded;
use crate::diagnosis;
use crate::exporter::Exporter;
use crate::{Error, Result, http, prober};

pub struct ServeOptions {
    /// `--web.listen-address`, each of them.
    pub listen_addresses: Vec<String>,
    /// `--web.systemd-socket`: serve on the sockets systemd passes instead.
    pub systemd_socket: bool,
    /// The routes: telemetry path, route prefix, links, request limit.
    pub web: http::WebOptions,
    /// `--web.config.file`: TLS and basic auth, exporter-toolkit style.
    pub web_config_file: Option<std::path::PathBuf>,
    /// `--web.max-connections`: connections open at once; 0 means no limit.
    pub max_connections: usize,
    /// `--web.max-connections-per-client`: connections one client may hold; 0 means no limit.
    pub max_connections_per_client: usize,
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn serve(loaded: Loaded, options: ServeOptions) -> Result<()> {
    serve_until(loaded, options, shutdown_signal()).await
}

/// Serves until `shutdown` completes (the Windows service's stop request, for one).
pub async fn serve_until(
    loaded: Loaded,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    http::server::raise_file_limit();
    tracing::info!(config = %loaded, version = crate::release::VERSION, revision = crate::release::REVISION, "starting appproxy_exporter");
    let exporter = Exporter::new(loaded);
    let web = match &options.web_config_file {
        None => None,
        Some(path) => Some(Arc::new(
            http::webconfig::WebConfigFile::open(path).map_err(Error::WebConfig)?,
        )),
    };
    let web_options = http::WebOptions {
        web_config: web.clone(),
        ..options.web.clone()
    };
    let app = http::router_with(Arc::clone(&exporter), &web_options);

    let listeners = if options.systemd_socket {
        systemd_listeners()?
    } else {
        bind(&options.listen_addresses).await?
    };
    let tls = web.as_ref().is_some_and(|w| w.in_force().tls.is_some());
    for listener in &listeners {
        let local = listener.local_addr().map_err(Error::Server)?;
        let prefix = options.web.paths.route_prefix();
        tracing::info!(address = %local, tls, route_prefix = prefix, "listening");
    }
    let limits = http::listener::ConnectionLimits {
        total: options.max_connections,
        per_client: options.max_connections_per_client,
    };
    let listener = http::listener::WebListener::new(listeners, web, limits, &exporter.tasks)
        .map_err(Error::Server)?;

    let tasks = &exporter.tasks;
    let for_prober = Arc::clone(&exporter);
    let prober = tokio::spawn(tasks.supervise("prober", move || {
        prober::Prober::new(Arc::clone(&for_prober)).run()
    }));
    let for_reloader = Arc::clone(&exporter);
    let reloader = tokio::spawn(tasks.supervise("sighup_reloader", move || {
        reload_on_sighup(Arc::clone(&for_reloader))
    }));
    http::server::serve(listener, app, shutdown).await;
    prober.abort();
    reloader.abort();
    tracing::info!("stopped");
    Ok(())
}

/// `diagnose`: one synchronous round, every backend requested once, then the walk printed.
/// Returns the exit code: 0 healthy, 3 something fails, 2 for an unknown `--app`. `runbooks`
/// is where the runbook links point (see [`http::paths::WebPaths::runbooks`]).
pub async fn diagnose(
    loaded: Loaded,
    app: Option<&str>,
    output: Output,
    runbooks: &str,
) -> Result<u8> {
    let config = loaded.to_string();
    let exporter = Exporter::new(loaded);
    let snapshot = prober::Prober::new(Arc::clone(&exporter))
        .round_once()
        .await;
    if let Some(name) = app {
        if !snapshot.walks.apps.iter().any(|w| &*w.app == name) {
            // Names come from Graph, chosen by whoever may name an app: printed escaped.
            let known: Vec<String> = snapshot
                .walks
                .apps
                .iter()
                .map(|w| crate::text::printable(&w.app).into_owned())
                .collect();
            eprintln!(
                "no app named \"{}\" is walked from this host (apps: {})",
                crate::text::printable(name),
                known.join(", ")
            );
            return Ok(2);
        }
    }
    let doc = diagnosis::build(&snapshot, exporter.machine_name(), config, app, runbooks);
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default()),
        Output::Text => {
            let colours = diagnosis::Colours(std::io::stdout().is_terminal());
            print!("{}", diagnosis::render_text(&doc, colours));
        }
    }
    Ok(if doc.healthy { 0 } else { 3 })
}

/// Binds every `--web.listen-address`; the first that fails stops the start.
async fn bind(addresses: &[String]) -> Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(addresses.len());
    for text in addresses {
        let address = listen_address(text);
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| Error::Listen { address, source })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Why `--web.systemd-socket` found nothing to listen on.
#[derive(Debug, thiserror::Error)]
pub enum SystemdSocketError {
    #[error(
        "no socket was passed (LISTEN_FDS is unset, or LISTEN_PID names another process): start it from a .socket unit, or drop the flag"
    )]
    NonePassed,
    #[error("descriptor {descriptor} is not a listening TCP socket: {source}")]
    NotTcp {
        descriptor: usize,
        source: std::io::Error,
    },
    #[error("descriptor {0} was already taken")]
    Taken(usize),
}

/// The listening sockets systemd passes (`LISTEN_FDS`, `LISTEN_PID`: sd_listen_fds(3)).
fn systemd_listeners() -> Result<Vec<TcpListener>> {
    let mut passed = listenfd::ListenFd::from_env();
    if passed.len() == 0 {
        return Err(Error::SystemdSocket(SystemdSocketError::NonePassed));
    }
    let mut listeners = Vec::with_capacity(passed.len());
    for index in 0..passed.len() {
        let listener = passed
            .take_tcp_listener(index)
            .map_err(|source| {
                Error::SystemdSocket(SystemdSocketError::NotTcp {
                    descriptor: index + 3,
                    source,
                })
            })?
            .ok_or(Error::SystemdSocket(SystemdSocketError::Taken(index + 3)))?;
        listener.set_nonblocking(true).map_err(Error::Server)?;
        listeners.push(TcpListener::from_std(listener).map_err(Error::Server)?);
    }
    Ok(listeners)
}

/// `:9869` means every IPv4 interface, as in Go; anything else is a host (or `[v6]`) and port.
fn listen_address(text: &str) -> String {
    match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_string(),
    }
}

/// SIGTERM or Ctrl-C. The listeners are registered now, before the sockets open, not when the
/// future is first polled: a SIGTERM that came as soon as the exporter answered (a service
/// manager stopping it right after start) once killed it with the signal's default action.
// Off Unix nothing is registered ahead (tokio's Ctrl-C), so the function is an async one there.
#[cfg_attr(not(unix), allow(clippy::manual_async_fn))]
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let listen = |stream: std::io::Result<tokio::signal::unix::Signal>,
                          name: &'static str| async move {
                match stream {
                    Ok(mut stream) => {
                        stream.recv().await;
                    }
                    Err(error) => {
                        tracing::error!(%error, signal = name, "cannot listen for the signal");
                        std::future::pending::<()>().await;
                    }
                }
            };
            let (terminate, interrupt) = streams;
            tokio::select! {
                () = listen(terminate, "SIGTERM") => {}
                () = listen(interrupt, "SIGINT") => {}
            }
        }
        #[cfg(not(unix))]
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down");
    }
}

#[cfg(unix)]
async fn reload_on_sighup(exporter: Arc<Exporter>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGHUP; reload with POST /-/reload");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP received, reloading the configuration");
        let exporter = Arc::clone(&exporter);
        // The outcome is logged and recorded in the reload metrics by `reload` itself.
        let _ = tokio::task::spawn_blocking(move || exporter.reload()).await;
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_exporter: Arc<Exporter>) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_listens_on_every_interface() {
        assert_eq!(listen_address(":9869"), "0.0.0.0:9869");
        assert_eq!(listen_address("127.0.0.1:0"), "127.0.0.1:0");
        assert_eq!(listen_address("[::1]:9869"), "[::1]:9869");
    }
}
