//! The scale-out storage settings (PostgreSQL + S3) from the command line,
//! checked: both or neither of the database and the bucket, values in range,
//! and whether S3 request bodies are signed.

use std::net::IpAddr;

use anyhow::bail;

use super::Cli;
use crate::store::remote::{RemoteConfig, S3Config};

/// Whether S3 request bodies go unhashed (`UNSIGNED-PAYLOAD`): `auto`
/// chooses it where the bytes cannot be changed on the way: over TLS (AWS
/// itself, or an https:// endpoint) and to a loopback address.
fn unsigned_payload(setting: &str, endpoint: Option<&str>) -> anyhow::Result<bool> {
    match setting.trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        "auto" | "" => Ok(match endpoint.filter(|e| !e.is_empty()) {
            None => true,
            Some(e) if e.starts_with("https://") => true,
            Some(e) => {
                let host = e
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or("");
                let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
                host == "localhost"
                    || host
                        .trim_matches(['[', ']'])
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
        }),
        other => bail!("PS_S3_UNSIGNED_PAYLOAD must be 1, 0 or auto, not {other:?}"),
    }
}

/// The scale-out storage settings, if PS_POSTGRES_URL or PS_S3_BUCKET is set.
///
/// # Errors
/// One of the two set without the other, or a value out of range.
pub fn remote_config(cli: &Cli) -> anyhow::Result<Option<RemoteConfig>> {
    let url = cli.postgres_url.clone().filter(|s| !s.is_empty());
    let bucket = cli.s3_bucket.clone().filter(|s| !s.is_empty());
    let (postgres_url, bucket) = match (url, bucket) {
        (None, None) => return Ok(None),
        (Some(u), Some(b)) => (u, b),
        (Some(_), None) => bail!(
            "PS_POSTGRES_URL is set but PS_S3_BUCKET is not: with PostgreSQL for metadata, file data goes to an S3 bucket"
        ),
        (None, Some(_)) => bail!(
            "PS_S3_BUCKET is set but PS_POSTGRES_URL is not: file data in S3 needs PostgreSQL for metadata"
        ),
    };
    if !(5..=5120).contains(&cli.s3_part_mib) {
        bail!("PS_S3_PART_MIB must be between 5 and 5120");
    }
    if !(1..=3600).contains(&cli.s3_timeout_secs) {
        bail!("PS_S3_TIMEOUT_SECS must be between 1 and 3600");
    }
    if !(2..=3600).contains(&cli.instance_lease_secs) {
        bail!("PS_INSTANCE_LEASE_SECS must be between 2 and 3600");
    }
    if !(1..=16).contains(&cli.s3_parallel_parts) {
        bail!("PS_S3_PARALLEL_PARTS must be between 1 and 16");
    }
    Ok(Some(RemoteConfig {
        postgres_url,
        postgres_schema: cli.postgres_schema.clone().filter(|s| !s.is_empty()),
        pool_size: cli.postgres_pool.clamp(2, 1000),
        postgres_ca_file: cli.postgres_ca_file.clone(),
        s3: S3Config {
            endpoint: cli.s3_endpoint.clone().filter(|s| !s.is_empty()),
            bucket,
            region: cli.s3_region.clone(),
            access_key_id: cli.s3_access_key_id.clone().filter(|s| !s.is_empty()),
            secret_access_key: cli.s3_secret_access_key.clone().filter(|s| !s.is_empty()),
            prefix: cli.s3_prefix.clone(),
            virtual_hosted: cli.s3_virtual_hosted != 0,
            unsigned_payload: unsigned_payload(
                &cli.s3_unsigned_payload,
                cli.s3_endpoint.as_deref(),
            )?,
            timeout_secs: cli.s3_timeout_secs,
        },
        part_size: cli.s3_part_mib << 20,
        parallel_parts: cli.s3_parallel_parts,
        tus_lease_secs: cli.tus_lease_secs.clamp(1, 3600),
        instance_lease_secs: cli.instance_lease_secs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_payload_auto_only_where_bytes_cannot_change() {
        let auto = |e: Option<&str>| unsigned_payload("auto", e).unwrap();
        assert!(auto(None));
        assert!(auto(Some("https://s3.example.com")));
        assert!(auto(Some("http://127.0.0.1:3900")));
        assert!(auto(Some("http://localhost:9000/")));
        assert!(auto(Some("http://[::1]:3900")));
        assert!(!auto(Some("http://10.0.0.5:3900")));
        assert!(!auto(Some("http://garage.internal:3900")));
        assert!(unsigned_payload("1", Some("http://10.0.0.5")).unwrap());
        assert!(!unsigned_payload("0", None).unwrap());
        assert!(unsigned_payload("sometimes", None).is_err());
    }
}
