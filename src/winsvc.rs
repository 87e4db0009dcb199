//! Running under the Windows Service Control Manager (`appproxy_exporter service`, which the
//! MSI registers: deploy/windows/appproxy_exporter.wxs). This glue lives in the binary: the
//! service entry point the Windows API calls is generated with `unsafe` code, which the library
//! forbids.

use std::ffi::OsString;
use std::sync::Mutex;
use std::time::Duration;

use appproxy_exporter::ServeOptions;
use appproxy_exporter::config::Loaded;
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::{define_windows_service, service_dispatcher};

pub const SERVICE_NAME: &str = "appproxy_exporter";

/// What `service_main` runs with; set once before the dispatcher starts.
static START: Mutex<Option<(Loaded, ServeOptions)>> = Mutex::new(None);

define_windows_service!(ffi_service_main, service_main);

/// Hands the process to the Service Control Manager; returns when the service stops.
pub fn run(loaded: Loaded, options: ServeOptions) -> Result<(), windows_service::Error> {
    *START
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((loaded, options));
    service_dispatcher::start(SERVICE_NAME, ffi_service_main)
}

fn service_main(_arguments: Vec<OsString>) {
    if let Err(error) = run_service() {
        tracing::error!(%error, "the service failed");
    }
}

fn run_service() -> Result<(), Box<dyn std::error::Error>> {
    let Some((loaded, options)) = START
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    else {
        return Err("the service started without its configuration".into());
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop_tx = Mutex::new(Some(stop_tx));
    let status = service_control_handler::register(SERVICE_NAME, move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            if let Some(tx) = stop_tx
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
            {
                let _ = tx.send(());
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    })?;
    let report = |state, accept, exit| ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(exit),
        checkpoint: 0,
        wait_hint: Duration::from_secs(10),
        process_id: None,
    };
    status.set_service_status(report(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        0,
    ))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(appproxy_exporter::serve_until(loaded, options, async {
        let _ = stop_rx.await;
        tracing::info!("stop requested by the Service Control Manager");
    }));
    // A read still hanging on a share must not hold up the stop.
    runtime.shutdown_timeout(Duration::from_secs(1));
    let exit = if result.is_ok() { 0 } else { 1 };
    if let Err(error) = &result {
        tracing::error!(%error, "the exporter stopped with an error");
    }
    status.set_service_status(report(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        exit,
    ))?;
    Ok(())
}
