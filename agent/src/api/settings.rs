//! `[api]`: where the API listens, and the files it loads when it starts
//! (the TLS certificate and key, the tokens). The config names the files;
//! [`Credentials::load`] reads them, with errors that name the key, the file
//! and what was expected, for `ward-agent check-config` and `ward-agent run`
//! alike.

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use super::auth::Tokens;

/// Where the API listens and which files it loads.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The Unix socket, always on.
    pub socket: PathBuf,
    /// The TCP address, opt-in.
    pub listen: Option<String>,
    /// TLS for the TCP listener.
    pub tls: Option<TlsFiles>,
    /// API tokens, one `ROLE TOKEN` a line.
    pub tokens_file: Option<PathBuf>,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What the API loaded from its files.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub tokens: Arc<Tokens>,
}

/// A file the API cannot use, named by its config key.
#[derive(Debug, Error)]
#[error("{key} = {value:?} is not valid: expected {expected}")]
pub struct CredentialError {
    pub key: &'static str,
    pub value: String,
    pub expected: String,
}

impl Credentials {
    /// Reads the TLS certificate and key and the tokens file, if set.
    pub fn load(settings: &ApiSettings) -> Result<Self, CredentialError> {
        let tls = match &settings.tls {
            None => None,
            Some(files) => Some(super::tls::server_config(&files.cert, &files.key).map_err(
                |why| CredentialError {
                    key: "api.tls_cert",
                    value: files.cert.display().to_string(),
                    expected: format!("a readable PEM certificate and key ({why})"),
                },
            )?),
        };
        let tokens = match &settings.tokens_file {
            None => Tokens::default(),
            Some(path) => Tokens::load(path).map_err(|why| CredentialError {
                key: "api.tokens_file",
                value: path.display().to_string(),
                expected: format!("a readable tokens file ({why})"),
            })?,
        };
        Ok(Self {
            tls,
            tokens: Arc::new(tokens),
        })
    }
}
