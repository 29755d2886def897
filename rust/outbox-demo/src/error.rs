//! The demo's one error type.

/// Why a register or the coordinator could not go on.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The Outbox engine refused an operation.
    #[error("outbox: {0}")]
    Outbox(#[from] outbox::Error),
    /// The embedded reference server could not start or be seeded.
    #[error("reference server: {0}")]
    Server(String),
    /// An HTTP exchange with the server failed or answered something unreadable.
    #[error("server request: {0}")]
    Http(String),
    /// A local I/O failure (pipes, temporary files, child processes).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A register process misbehaved (exited early, sent garbage, timed out).
    #[error("register {index}: {message}")]
    Register {
        /// The register's number (1-based).
        index: usize,
        /// What went wrong.
        message: String,
    },
    /// The run's settings make no sense.
    #[error("invalid settings: {0}")]
    Usage(String),
}

impl From<reqwest::Error> for DemoError {
    fn from(e: reqwest::Error) -> Self {
        DemoError::Http(e.to_string())
    }
}

/// Result alias for the demo.
pub type Result<T> = std::result::Result<T, DemoError>;
