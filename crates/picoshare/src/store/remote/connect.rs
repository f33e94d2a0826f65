//! Connecting the scale-out store: the PostgreSQL pool (TLS as the URL's
//! `sslmode` says, with rustls) and the S3 client.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ClientOptions, RetryConfig};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{RemoteConfig, S3Config};
use crate::store::StoreError;

/// Builds the object-store client for `cfg`.
///
/// # Errors
/// An invalid endpoint or missing credentials.
pub(crate) fn s3_client(cfg: &S3Config) -> Result<AmazonS3, StoreError> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&cfg.bucket)
        .with_region(&cfg.region)
        .with_virtual_hosted_style_request(cfg.virtual_hosted)
        .with_unsigned_payload(cfg.unsigned_payload)
        // Retries (of failed connections, 5xx answers) stop after the
        // timeout; `RemoteStore::s3_call` bounds each request as a whole.
        .with_retry(RetryConfig {
            retry_timeout: Duration::from_secs(cfg.timeout_secs),
            ..RetryConfig::default()
        })
        // Downloads stream for as long as the client reads: no overall
        // request timeout, only one for connecting.
        .with_client_options(
            ClientOptions::new()
                .with_timeout_disabled()
                .with_connect_timeout(Duration::from_secs(10))
                .with_allow_http(
                    cfg.endpoint
                        .as_deref()
                        .is_some_and(|e| e.starts_with("http://")),
                ),
        );
    if let Some(ep) = &cfg.endpoint {
        b = b.with_endpoint(ep);
    }
    if let Some(k) = &cfg.access_key_id {
        b = b.with_access_key_id(k);
    }
    if let Some(k) = &cfg.secret_access_key {
        b = b.with_secret_access_key(k);
    }
    Ok(b.build()?)
}

/// Builds the PostgreSQL pool for `cfg` (connections are opened lazily).
///
/// # Errors
/// An invalid URL or schema name.
pub(crate) fn pg_pool(cfg: &RemoteConfig) -> Result<Pool, StoreError> {
    let mut pg: tokio_postgres::Config =
        cfg.postgres_url
            .parse()
            .map_err(|e: tokio_postgres::Error| {
                StoreError::Schema(format!("invalid PostgreSQL URL: {e}"))
            })?;
    if let Some(schema) = &cfg.postgres_schema {
        check_schema_name(schema)?;
        pg.options(format!("-c search_path={schema}"));
    }
    pg.application_name("picoshare");
    let verify = cfg.postgres_ca_file.is_some()
        || matches!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    let tls = postgres_tls(cfg.postgres_ca_file.as_deref(), verify)?;
    let mgr = Manager::from_config(
        pg,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(cfg.pool_size.max(2))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Schema(format!("PostgreSQL pool: {e}")))
}

/// The TLS set-up for PostgreSQL connections (rustls). Whether TLS is used
/// is the URL's `sslmode`. With `verify` (`sslmode=require`, or a CA file
/// given) the server's certificate must check out against the CA file or the
/// system's trusted roots; otherwise (`prefer`, the default) the connection
/// is encrypted when the server offers TLS but, as with libpq's `prefer`,
/// its certificate is not checked (servers often run with a self-signed one).
fn postgres_tls(
    ca_file: Option<&std::path::Path>,
    verify: bool,
) -> Result<MakeRustlsConnect, StoreError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    if !verify {
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Schema(format!("TLS set-up: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(Unverified(provider)))
            .with_no_client_auth();
        return Ok(MakeRustlsConnect::new(config));
    }
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                StoreError::Schema(format!(
                    "cannot read PS_POSTGRES_CA_FILE {}: {e}",
                    path.display()
                ))
            })?;
            let mut reader = std::io::BufReader::new(pem.as_slice());
            let certs: Vec<_> = rustls_pemfile_certs(&mut reader);
            if certs.is_empty() {
                return Err(StoreError::Schema(format!(
                    "PS_POSTGRES_CA_FILE {} holds no PEM certificate",
                    path.display()
                )));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    StoreError::Schema(format!("PS_POSTGRES_CA_FILE {}: {e}", path.display()))
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system certificate rustls cannot parse is skipped.
                let _ = roots.add(cert);
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Schema(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Accepts any certificate (signatures are still checked): the encryption of
/// `sslmode=prefer`, which guards against eavesdropping, not impersonation.
#[derive(Debug)]
struct Unverified(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The certificates in a PEM stream.
fn rustls_pemfile_certs(
    reader: &mut dyn std::io::BufRead,
) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    let mut all = Vec::new();
    let mut text = Vec::new();
    if reader.read_to_end(&mut text).is_err() {
        return all;
    }
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&text).flatten() {
        all.push(cert);
    }
    all
}

/// Schema names go into a connection option and a `CREATE SCHEMA`: letters,
/// digits and underscores only.
fn check_schema_name(s: &str) -> Result<(), StoreError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Schema(format!(
            "invalid PostgreSQL schema name {s:?}: use letters, digits and underscores"
        )))
    }
}
