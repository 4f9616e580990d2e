//! The two OTLP transports: gRPC (tonic) and HTTP/protobuf (hyper), and how
//! their answers read: taken (perhaps in part), retry, or refused for good.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::{ExportSettings, Protocol};

/// One request's worth of data.
#[derive(Debug, Clone)]
pub enum Payload {
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
}

/// What became of one request.
#[derive(Debug)]
pub enum Outcome {
    /// Taken; `rejected` points or records were refused by a partial success.
    Taken { rejected: i64, message: String },
    /// Worth sending again, after `after` if the backend said.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// Not worth sending again.
    Refused(String),
}

pub enum Sender {
    Grpc(Box<GrpcClients>),
    Http(Box<HttpTarget>),
}

pub struct HttpTarget {
    metrics_url: hyper::Uri,
    logs_url: hyper::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    tls: Option<Arc<rustls::ClientConfig>>,
    gzip: bool,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers may hold keys: never printed.
        f.write_str(match self {
            Sender::Grpc(_) => "Sender::Grpc",
            Sender::Http(_) => "Sender::Http",
        })
    }
}

pub struct GrpcClients {
    metrics: MetricsServiceClient<Channel>,
    logs: LogsServiceClient<Channel>,
    headers: MetadataMap,
}

/// `base` with `path` added to its own path.
fn signal_url(base: &hyper::Uri, path: &str) -> Result<hyper::Uri, String> {
    let root = base.path().trim_end_matches('/');
    let query = base.query().map_or(String::new(), |q| format!("?{q}"));
    hyper::Uri::builder()
        .scheme(base.scheme_str().unwrap_or("http"))
        .authority(base.authority().map_or("", |a| a.as_str()))
        .path_and_query(format!("{root}{path}{query}"))
        .build()
        .map_err(|e| e.to_string())
}

impl Sender {
    pub fn new(s: &ExportSettings) -> Result<Self, String> {
        let https = s.endpoint.scheme_str() == Some("https");
        let ca = match &s.ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("export.otlp.ca_file {}: {e}", path.display()))?,
            ),
            None => None,
        };
        match s.protocol {
            Protocol::Grpc => {
                let mut endpoint = Endpoint::from_shared(s.endpoint.to_string())
                    .map_err(|e| format!("export.otlp.endpoint: {e}"))?
                    .connect_timeout(s.timeout)
                    .timeout(s.timeout)
                    .user_agent(concat!("ward-agent/", env!("CARGO_PKG_VERSION")))
                    .map_err(|e| e.to_string())?;
                if https {
                    let tls = match ca {
                        Some(pem) => {
                            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
                        }
                        None => ClientTlsConfig::new().with_native_roots(),
                    };
                    endpoint = endpoint
                        .tls_config(tls)
                        .map_err(|e| format!("export.otlp TLS: {e}"))?;
                }
                let channel = endpoint.connect_lazy();
                let mut headers = MetadataMap::new();
                for (name, value) in &s.headers {
                    let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                        .map_err(|_| {
                            format!("export.otlp.headers: {name:?} is not a header name")
                        })?;
                    let value = MetadataValue::try_from(value.as_str()).map_err(|_| {
                        format!("export.otlp.headers: the value of {name} is not visible ASCII")
                    })?;
                    headers.insert(key, value);
                }
                let mut metrics =
                    MetricsServiceClient::new(channel.clone()).max_decoding_message_size(4 << 20);
                let mut logs = LogsServiceClient::new(channel);
                if s.gzip {
                    metrics = metrics.send_compressed(CompressionEncoding::Gzip);
                    logs = logs.send_compressed(CompressionEncoding::Gzip);
                }
                metrics = metrics.accept_compressed(CompressionEncoding::Gzip);
                logs = logs.accept_compressed(CompressionEncoding::Gzip);
                Ok(Sender::Grpc(Box::new(GrpcClients {
                    metrics,
                    logs,
                    headers,
                })))
            }
            Protocol::HttpProtobuf => {
                let tls = if https {
                    Some(match &s.ca_file {
                        Some(path) => ward_shared::client::tls_from_ca_file(path)?,
                        None => ward_shared::client::system_tls()?.0,
                    })
                } else {
                    None
                };
                let mut headers = vec![(
                    hyper::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                )];
                if s.gzip {
                    headers.push((
                        hyper::header::CONTENT_ENCODING,
                        HeaderValue::from_static("gzip"),
                    ));
                }
                for (name, value) in &s.headers {
                    let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                        .map_err(|_| {
                            format!("export.otlp.headers: {name:?} is not a header name")
                        })?;
                    let value = HeaderValue::from_str(value).map_err(|_| {
                        format!("export.otlp.headers: the value of {name} is not visible ASCII")
                    })?;
                    headers.push((name, value));
                }
                Ok(Sender::Http(Box::new(HttpTarget {
                    metrics_url: signal_url(&s.endpoint, "/v1/metrics")?,
                    logs_url: signal_url(&s.endpoint, "/v1/logs")?,
                    headers,
                    tls,
                    gzip: s.gzip,
                })))
            }
        }
    }

    pub async fn send(&mut self, payload: &Payload) -> Outcome {
        match self {
            Sender::Grpc(clients) => {
                let GrpcClients {
                    metrics,
                    logs,
                    headers,
                } = &mut **clients;
                let answer = match payload {
                    Payload::Metrics(req) => {
                        let mut request = tonic::Request::new(req.clone());
                        *request.metadata_mut() = headers.clone();
                        metrics.export(request).await.map(|r| {
                            r.into_inner()
                                .partial_success
                                .map_or((0, String::new()), |p| {
                                    (p.rejected_data_points, p.error_message)
                                })
                        })
                    }
                    Payload::Logs(req) => {
                        let mut request = tonic::Request::new(req.clone());
                        *request.metadata_mut() = headers.clone();
                        logs.export(request).await.map(|r| {
                            r.into_inner()
                                .partial_success
                                .map_or((0, String::new()), |p| {
                                    (p.rejected_log_records, p.error_message)
                                })
                        })
                    }
                };
                match answer {
                    Ok((rejected, message)) => Outcome::Taken { rejected, message },
                    Err(status) => grpc_outcome(&status),
                }
            }
            Sender::Http(target) => {
                let HttpTarget {
                    metrics_url,
                    logs_url,
                    headers,
                    tls,
                    gzip,
                } = &**target;
                let (url, body) = match payload {
                    Payload::Metrics(req) => (metrics_url, req.encode_to_vec()),
                    Payload::Logs(req) => (logs_url, req.encode_to_vec()),
                };
                let body = if *gzip {
                    match gzip_bytes(&body) {
                        Ok(b) => b,
                        Err(e) => return Outcome::Refused(format!("gzip: {e}")),
                    }
                } else {
                    body
                };
                match crate::outbound::post(url, headers, Bytes::from(body), tls.as_ref()).await {
                    Ok(response) => http_outcome(payload, &response),
                    Err(e) => Outcome::Retry {
                        after: None,
                        why: e,
                    },
                }
            }
        }
    }
}

fn gzip_bytes(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data)?;
    enc.finish()
}

/// What an HTTP answer means for the batch (OTLP/HTTP: 429, 502, 503 and
/// 504 are retryable, with Retry-After; any other failure is not).
fn http_outcome(payload: &Payload, response: &hyper::Response<Bytes>) -> Outcome {
    let status = response.status();
    let text = || {
        let body = String::from_utf8_lossy(response.body());
        let body: String = body.chars().filter(|c| !c.is_control()).take(200).collect();
        format!("HTTP {status} {body}").trim().to_string()
    };
    if status.is_success() {
        let body = response.body();
        let (rejected, message) = match payload {
            Payload::Metrics(_) => ExportMetricsServiceResponse::decode(body.as_ref())
                .ok()
                .and_then(|r| r.partial_success)
                .map_or((0, String::new()), |p| {
                    (p.rejected_data_points, p.error_message)
                }),
            Payload::Logs(_) => ExportLogsServiceResponse::decode(body.as_ref())
                .ok()
                .and_then(|r| r.partial_success)
                .map_or((0, String::new()), |p| {
                    (p.rejected_log_records, p.error_message)
                }),
        };
        return Outcome::Taken { rejected, message };
    }
    match status.as_u16() {
        429 | 502 | 503 | 504 => Outcome::Retry {
            after: crate::outbound::retry_after(response),
            why: text(),
        },
        _ => Outcome::Refused(text()),
    }
}

/// What a gRPC status means for the batch, per the OTLP specification.
fn grpc_outcome(status: &tonic::Status) -> Outcome {
    let why = format!("gRPC {:?}: {}", status.code(), status.message());
    let retry_info = retry_delay(status.details());
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Outcome::Retry {
            after: retry_info,
            why,
        },
        // Throttling: retried only when the server says when.
        Code::ResourceExhausted if retry_info.is_some() => Outcome::Retry {
            after: retry_info,
            why,
        },
        // A failure on this side (a broken connection tonic could not
        // name) carries its cause; a server's Unknown does not.
        Code::Unknown if std::error::Error::source(status).is_some() => {
            Outcome::Retry { after: None, why }
        }
        _ => Outcome::Refused(why),
    }
}

/// google.rpc.Status, as sent in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<RpcAny>,
}

/// google.protobuf.Any.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// google.rpc.RetryInfo.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<RpcDuration>,
}

/// google.protobuf.Duration.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The delay a server asked for in a RetryInfo detail, if any.
fn retry_delay(details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .find(|d| d.type_url.ends_with("google.rpc.RetryInfo"))
        .and_then(|d| RetryInfo::decode(d.value.as_slice()).ok()?.retry_delay)
        .map(|d| {
            Duration::from_secs(d.seconds.max(0) as u64)
                + Duration::from_nanos(d.nanos.max(0) as u64)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_is_read_from_the_status_details() {
        let info = RetryInfo {
            retry_delay: Some(RpcDuration {
                seconds: 3,
                nanos: 500_000_000,
            }),
        };
        let details = RpcStatus {
            code: Code::ResourceExhausted as i32,
            message: "slow down".into(),
            details: vec![RpcAny {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: info.encode_to_vec(),
            }],
        }
        .encode_to_vec();
        let status =
            tonic::Status::with_details(Code::ResourceExhausted, "slow down", Bytes::from(details));
        match grpc_outcome(&status) {
            Outcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_millis(3500))),
            other => panic!("expected a retry, got {other:?}"),
        }
        // Without RetryInfo, throttling is not retried (OTLP specification).
        let bare = tonic::Status::resource_exhausted("slow down");
        assert!(matches!(grpc_outcome(&bare), Outcome::Refused(_)));
        assert!(matches!(
            grpc_outcome(&tonic::Status::unavailable("down")),
            Outcome::Retry { after: None, .. }
        ));
        assert!(matches!(
            grpc_outcome(&tonic::Status::invalid_argument("bad")),
            Outcome::Refused(_)
        ));
    }

    #[test]
    fn http_signal_paths_are_added_to_the_base_path() {
        let base: hyper::Uri = "https://otlp.example.com:4318/tenant/a/".parse().unwrap();
        assert_eq!(
            signal_url(&base, "/v1/metrics").unwrap().to_string(),
            "https://otlp.example.com:4318/tenant/a/v1/metrics"
        );
        let bare: hyper::Uri = "http://127.0.0.1:4318".parse().unwrap();
        assert_eq!(
            signal_url(&bare, "/v1/logs").unwrap().to_string(),
            "http://127.0.0.1:4318/v1/logs"
        );
    }
}
