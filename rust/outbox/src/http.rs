//! The built-in HTTP transport (reqwest + rustls) speaking docs/protocol.md.
