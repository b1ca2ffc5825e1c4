//! `shoal start`: runs a node until SIGINT or SIGTERM.
//!
//! Every failure to start (a port in use, a store from another cluster, no `--join` address
//! answering) ends the process with one line saying which, and exit status 1.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use shoal_hlc::Clock;
use shoal_server::{Server, ServerConfig, TestHooks};

use crate::StartArgs;

fn resolve(flag: &str, text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("{flag} {text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{flag} {text:?} resolves to no address"))
}

/// Runs `shoal start`.
pub async fn run(args: StartArgs) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG")
                .unwrap_or_else(|_| "info,openraft=warn,tarpc=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let listen_addr = resolve("--listen-addr", &args.listen_addr)?;
    let http_addr = resolve("--http-addr", &args.http_addr)?;
    let mut config = ServerConfig::new(args.store.clone(), listen_addr, http_addr);
    config.pg_addr = Some(resolve("--pg-addr", &args.pg_addr)?);
    config.join = args.join.clone();
    config.advertise_addr =
        args.advertise_addr.as_deref().map(|a| resolve("--advertise-addr", a)).transpose()?;
    config.join_timeout = args.join_timeout;
    config.liveness_timeout = args.liveness_timeout;
    config.queue_interval = args.queue_interval;
    config.dead_node_grace = args.dead_node_grace;
    let (clock, physical) = Clock::system();
    if args.enable_test_hooks {
        tracing::warn!(
            unsafe_stale_reads = args.unsafe_stale_reads,
            unsafe_skip_refresh = args.unsafe_skip_refresh,
            "test hooks are enabled: this node must not hold data anyone cares about"
        );
        config.test_hooks = Some(TestHooks {
            clock: physical,
            unsafe_stale_reads: args.unsafe_stale_reads,
            unsafe_skip_refresh: args.unsafe_skip_refresh,
        });
    }
    let server = Server::bind(config, Arc::new(clock)).await.map_err(|e| e.to_string())?;
    if server.cluster().is_none() {
        let joins = if args.join.is_empty() { "none".to_string() } else { args.join.join(",") };
        println!(
            "node listening on {} (http {}); waiting for `shoal init --host {}` or a cluster to \
             join (--join {joins})",
            server.rpc_addr(),
            server.http_addr(),
            server.http_addr()
        );
    }
    tokio::select! {
        joined = server.join_cluster() => joined.map_err(|e| e.to_string())?,
        _ = shutdown_signal() => {
            server.shutdown().await;
            return Ok(());
        }
    }
    let cluster = server.require_cluster().map_err(|e| e.to_string())?;
    println!("shoal node {} ready", cluster.ident.node_id);
    println!("  cluster: {}", cluster.ident.cluster_id);
    println!("  rpc:     {}", server.rpc_addr());
    println!("  http:    http://{}", server.http_addr());
    if let Some(pg) = server.pg_addr() {
        println!("  sql:     postgresql://root@{pg}/defaultdb?sslmode=disable");
    }
    println!("  store:   {}", args.store.display());
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
