//! Cross-node nudges: `NOTIFY` on commit, `LISTEN` on one dedicated connection per node.
//!
//! Every transaction that advances a workspace's change log calls
//! `pg_notify(channel, '<seq> <workspace>')` before it commits. PostgreSQL delivers a
//! notification only when (and if) its transaction commits, in commit order, to every
//! session listening on the channel, this node's own listener included. The listener task
//! turns each one into a [`ChangeNotice`] on a broadcast channel that the HTTP layer
//! forwards to `GET /v1/stream` subscribers. Nudges are hints: a client always pulls from
//! its own cursor, so a lost or repeated nudge costs at most one extra pull.
//!
//! If the listening connection drops, the task reconnects with capped backoff and then
//! sends [`ChangeNotice::Unknown`], because commits made meanwhile were not heard.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{broadcast, oneshot};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::storage::{ChangeNotice, StorageError};

/// The payload `pg_notify` carries for a commit that left `workspace` at `seq`.
pub(crate) fn payload(workspace: &str, seq: i64) -> String {
    format!("{seq} {workspace}")
}

/// Reads [`payload`] back; `None` for anything else.
fn parse(payload: &str) -> Option<ChangeNotice> {
    let (seq, workspace) = payload.split_once(' ')?;
    Some(ChangeNotice::Workspace { workspace: workspace.to_string(), seq: seq.parse().ok()? })
}

/// Listens on `channel` until the task is aborted. `ready` is answered after the first
/// `LISTEN` succeeded (or with the first failure, after which the task still retries).
pub(crate) async fn listen(
    config: tokio_postgres::Config,
    channel: String,
    notices: broadcast::Sender<ChangeNotice>,
    ready: oneshot::Sender<Result<(), StorageError>>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        let outcome = listen_once(&config, &channel, &notices, &mut ready, !first).await;
        first = false;
        match outcome {
            Ok(()) => {
                backoff = Duration::from_millis(100);
                tracing::warn!("postgres listener connection closed; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, "postgres listener failed; retrying");
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(e));
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One connection's life: `LISTEN`, then forward notifications until it ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    notices: &broadcast::Sender<ChangeNotice>,
    ready: &mut Option<oneshot::Sender<Result<(), StorageError>>>,
    reconnected: bool,
) -> Result<(), StorageError> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for the client to work; notifications arrive here.
    let pump = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "postgres listener connection error");
                    break;
                }
            }
        }
    });
    // `channel` was built from a checked identifier; quoted, it keeps its exact spelling.
    let listened = client.batch_execute(&format!("LISTEN \"{channel}\"")).await;
    if let Err(e) = listened {
        pump.abort();
        return Err(e.into());
    }
    if let Some(r) = ready.take() {
        let _ = r.send(Ok(()));
    }
    if reconnected {
        let _ = notices.send(ChangeNotice::Unknown);
    }
    while let Some(text) = rx.recv().await {
        match parse(&text) {
            Some(notice) => {
                let _ = notices.send(notice);
            }
            None => tracing::warn!("ignoring a notification this server did not send"),
        }
    }
    drop(client);
    pump.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_workspaces_with_spaces() {
        let notice = parse(&payload("my shop 1", 42));
        assert_eq!(notice, Some(ChangeNotice::Workspace { workspace: "my shop 1".into(), seq: 42 }));
        assert_eq!(parse("garbage"), None);
    }
}
