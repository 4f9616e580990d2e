//! Who may do what on the API: bearer tokens with roles.
//!
//! Tokens live in a file (`api.tokens_file`), one `ROLE TOKEN` a line, `#`
//! for comments; roles are `viewer` (read), `operator` (act on incidents)
//! and `admin`. On TCP every request needs a token. On the Unix socket the
//! socket's permissions are the authentication (mode 0660: its owner and
//! group), and a request without a token acts as `operator`; a token, if
//! given, decides. Reads need `viewer`; anything that changes something
//! needs `operator` unless its route asks for more.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    /// The role's name, as histories show who acted.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// How a request reached the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Socket,
    Tcp,
}

/// The tokens the API accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Vec<(Role, Vec<u8>)>);

/// Shortest token accepted: guessing must be hopeless.
pub const MIN_TOKEN_LEN: usize = 16;

impl Tokens {
    /// Reads a tokens file; the error names the line and what is wrong.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(path)
                && m.permissions().mode() & 0o077 != 0
            {
                return Err(format!(
                    "{}: readable by others (mode {:o}); chmod 600 it",
                    path.display(),
                    m.permissions().mode() & 0o777
                ));
            }
        }
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (role, token) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("line {}: expected `ROLE TOKEN`", n + 1))?;
            let role = Role::parse(role).ok_or_else(|| {
                format!(
                    "line {}: role {role:?} is not viewer, operator or admin",
                    n + 1
                )
            })?;
            let token = token.trim();
            if token.len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "line {}: a token needs at least {MIN_TOKEN_LEN} characters",
                    n + 1
                ));
            }
            if out
                .iter()
                .any(|(_, t): &(Role, Vec<u8>)| t == token.as_bytes())
            {
                return Err(format!("line {}: this token is given twice", n + 1));
            }
            out.push((role, token.as_bytes().to_vec()));
        }
        Ok(Self(out))
    }

    /// The role of a presented token, comparing in constant time.
    fn role_of(&self, presented: &[u8]) -> Option<Role> {
        let mut found = None;
        for (role, token) in &self.0 {
            let same = token.len() == presented.len()
                && token
                    .iter()
                    .zip(presented)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0;
            if same {
                found = Some(*role);
            }
        }
        found
    }
}

/// What the auth layer needs: the tokens and the transport it guards.
#[derive(Debug, Clone)]
pub struct Guard {
    pub tokens: std::sync::Arc<Tokens>,
    pub transport: Transport,
}

fn needed(method: &Method, path: &str) -> Role {
    // Queries are reads sent as POST for their body.
    if method == Method::GET || path == "/api/v1/query" {
        Role::Viewer
    } else {
        Role::Operator
    }
}

/// The middleware: refuses what the caller's role does not allow.
pub async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().as_bytes().to_vec());
    let role = match (&presented, guard.transport) {
        (Some(t), _) => match guard.tokens.role_of(t) {
            Some(r) => r,
            None => {
                return Failure(
                    StatusCode::UNAUTHORIZED,
                    "the bearer token is not one this agent knows".into(),
                )
                .into_response();
            }
        },
        (None, Transport::Socket) => Role::Operator,
        (None, Transport::Tcp) => {
            return Failure(
                StatusCode::UNAUTHORIZED,
                "the API needs a bearer token over TCP: send `Authorization: Bearer TOKEN` with a token from the agent's api.tokens_file".into(),
            )
            .into_response();
        }
    };
    let need = needed(request.method(), request.uri().path());
    if role < need {
        return Failure(
            StatusCode::FORBIDDEN,
            format!("this needs the {need:?} role; the token has {role:?}").to_lowercase(),
        )
        .into_response();
    }
    let mut request = request;
    request.extensions_mut().insert(role);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_are_checked_line_by_line() {
        let t =
            Tokens::parse("# ops\nviewer aaaaaaaaaaaaaaaa\noperator bbbbbbbbbbbbbbbb\n").unwrap();
        assert_eq!(t.role_of(b"aaaaaaaaaaaaaaaa"), Some(Role::Viewer));
        assert_eq!(t.role_of(b"bbbbbbbbbbbbbbbb"), Some(Role::Operator));
        assert_eq!(t.role_of(b"aaaaaaaaaaaaaaab"), None);
        assert_eq!(t.role_of(b""), None);
        assert_eq!(
            Tokens::parse("root aaaaaaaaaaaaaaaa").unwrap_err(),
            r#"line 1: role "root" is not viewer, operator or admin"#
        );
        assert!(
            Tokens::parse("viewer short")
                .unwrap_err()
                .contains("at least 16")
        );
        assert!(
            Tokens::parse("viewer aaaaaaaaaaaaaaaa\nadmin aaaaaaaaaaaaaaaa")
                .unwrap_err()
                .contains("line 2: this token is given twice")
        );
        assert!(
            Tokens::parse("viewer")
                .unwrap_err()
                .contains("expected `ROLE TOKEN`")
        );
    }

    #[test]
    fn reads_need_viewer_and_changes_operator() {
        assert_eq!(needed(&Method::GET, "/api/v1/series"), Role::Viewer);
        assert_eq!(needed(&Method::POST, "/api/v1/query"), Role::Viewer);
        assert_eq!(
            needed(&Method::POST, "/api/v1/incidents/7/ack"),
            Role::Operator
        );
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
    }
}
