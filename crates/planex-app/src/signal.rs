//! The stop signal every long-running planex process waits for (`planex serve`, `run`, `worker`,
//! `sim`, the benchmark workers).

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => wait_ctrl_c(ctrl_c).await,
        }
    }
    #[cfg(not(unix))]
    wait_ctrl_c(ctrl_c).await;
}

/// Waits for Ctrl-C; if the handler cannot be installed, waits forever (SIGTERM still ends the
/// process by default).
async fn wait_ctrl_c(ctrl_c: impl std::future::Future<Output = std::io::Result<()>>) {
    if let Err(error) = ctrl_c.await {
        eprintln!("planex: cannot listen for Ctrl-C ({error}); stop the process with SIGTERM");
        std::future::pending::<()>().await;
    }
}
