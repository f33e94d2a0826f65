//! The SMTP server that sends e-mail notifications (`PS_SMTP_*`), checked.
//!
//! It is set once for the server, in its environment like the passphrase,
//! not per destination in the database: the password then never sits in
//! the database file, its backups or its Litestream replica, a destination
//! is only a list of addresses, and a self-hoster sets the mail relay the
//! way mail is set for other self-hosted services (`SMTP_HOST`-style
//! variables in a compose file, or a secret file).

use std::path::Path;

use anyhow::{bail, Context};
use lettre::message::Mailbox;

use super::Cli;

/// How the connection to the SMTP server is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SmtpTls {
    /// Plain SMTP (a relay on the same host or network).
    None,
    /// `STARTTLS` after the greeting; a server that does not offer it is
    /// an error (never a fallback to plain text).
    StartTls,
    /// TLS from the first byte ("SMTPS", port 465).
    Tls,
}

/// The SMTP server's settings.
#[derive(Clone)]
pub(crate) struct SmtpConfig {
    /// Host name or IP address.
    pub(crate) host: String,
    /// Port.
    pub(crate) port: u16,
    /// Encryption.
    pub(crate) tls: SmtpTls,
    /// User name and password, if the server wants a login.
    pub(crate) credentials: Option<(String, String)>,
    /// The sender of every e-mail.
    pub(crate) from: Mailbox,
    /// PEM certificates of the CAs to trust instead of the system's roots.
    pub(crate) ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpConfig {
    /// Everything but the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.credentials.as_ref().map(|c| &c.0))
            .field("from", &self.from.to_string())
            .field("ca_pem", &self.ca_pem.is_some())
            .finish()
    }
}

/// A non-empty value.
fn set(v: Option<&String>) -> Option<&str> {
    v.map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The SMTP settings from the command line, `PS_SMTP_PASSWORD_FILE`
/// (`password_file`) and the CA file they name; `None` without
/// `PS_SMTP_HOST`.
///
/// # Errors
/// A message naming the setting that is missing or wrong.
pub(super) fn smtp_config(
    cli: &Cli,
    password_file: Option<String>,
) -> anyhow::Result<Option<SmtpConfig>> {
    let password = match password_file.filter(|f| !f.is_empty()) {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("could not read PS_SMTP_PASSWORD_FILE ({path})"))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        ),
        None => cli.smtp_password.clone().filter(|p| !p.is_empty()),
    };
    let Some(host) = set(cli.smtp_host.as_ref()) else {
        let others = [
            ("PS_SMTP_FROM", set(cli.smtp_from.as_ref()).is_some()),
            (
                "PS_SMTP_USERNAME",
                set(cli.smtp_username.as_ref()).is_some(),
            ),
            ("PS_SMTP_PASSWORD", password.is_some()),
            ("PS_SMTP_PORT", cli.smtp_port.is_some()),
            ("PS_SMTP_CA_FILE", cli.smtp_ca_file.is_some()),
        ];
        if let Some((name, _)) = others.iter().find(|(_, given)| *given) {
            bail!("{name} is set but PS_SMTP_HOST is not: set the SMTP server's host too");
        }
        return Ok(None);
    };
    if host.contains(['/', ':', ' ']) && host.parse::<std::net::Ipv6Addr>().is_err() {
        bail!(
            "PS_SMTP_HOST must be a host name or an IP address, not {host:?} (the port goes in PS_SMTP_PORT)"
        );
    }
    let tls = match cli.smtp_tls.trim().to_ascii_lowercase().as_str() {
        "starttls" | "" => SmtpTls::StartTls,
        "tls" => SmtpTls::Tls,
        "none" => SmtpTls::None,
        other => bail!("PS_SMTP_TLS must be starttls, tls or none, not {other:?}"),
    };
    let port = match cli.smtp_port {
        Some(0) => bail!("PS_SMTP_PORT must be a port number from 1 to 65535"),
        Some(p) => p,
        None => match tls {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        },
    };
    let from_text = set(cli.smtp_from.as_ref()).context(
        "PS_SMTP_HOST is set but PS_SMTP_FROM is not: set the sender's address \
         (e.g. picoshare@example.com)",
    )?;
    let from: Mailbox = from_text.parse().map_err(|e| {
        anyhow::anyhow!(
            "PS_SMTP_FROM must be an e-mail address such as picoshare@example.com or \
             \"PicoShare <picoshare@example.com>\", not {from_text:?} ({e})"
        )
    })?;
    let credentials = match (set(cli.smtp_username.as_ref()), password) {
        (None, None) => None,
        (Some(user), Some(pass)) => Some((user.to_owned(), pass)),
        (Some(_), None) => {
            bail!("PS_SMTP_USERNAME is set but PS_SMTP_PASSWORD (or PS_SMTP_PASSWORD_FILE) is not")
        }
        (None, Some(_)) => bail!("PS_SMTP_PASSWORD is set but PS_SMTP_USERNAME is not"),
    };
    let ca_pem = match &cli.smtp_ca_file {
        None => None,
        Some(path) => Some(read_ca(path, tls)?),
    };
    Ok(Some(SmtpConfig {
        host: host.to_owned(),
        port,
        tls,
        credentials,
        from,
        ca_pem,
    }))
}

/// The PEM certificates of `PS_SMTP_CA_FILE`, checked.
fn read_ca(path: &Path, tls: SmtpTls) -> anyhow::Result<Vec<u8>> {
    if tls == SmtpTls::None {
        bail!("PS_SMTP_CA_FILE is set but PS_SMTP_TLS is none: nothing would use it");
    }
    let pem = std::fs::read(path)
        .with_context(|| format!("could not read PS_SMTP_CA_FILE ({})", path.display()))?;
    lettre::transport::smtp::client::Certificate::from_pem(&pem).map_err(|e| {
        anyhow::anyhow!(
            "PS_SMTP_CA_FILE ({}) holds no usable PEM certificate: {e}",
            path.display()
        )
    })?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::super::cli::parse;
    use super::*;

    fn with(args: &[&str]) -> anyhow::Result<Option<SmtpConfig>> {
        smtp_config(&parse(args), None)
    }

    #[test]
    fn unset_means_no_email() {
        assert!(with(&[]).unwrap().is_none());
        let err = with(&["--smtp-from", "a@example.com"]).unwrap_err();
        assert!(err.to_string().contains("PS_SMTP_HOST is not"), "{err}");
    }

    #[test]
    fn defaults_and_checks() {
        let c = with(&[
            "--smtp-host",
            "mail.example.com",
            "--smtp-from",
            "PicoShare <ps@example.com>",
        ])
        .unwrap()
        .unwrap();
        assert_eq!((c.port, c.tls), (587, SmtpTls::StartTls));
        assert_eq!(c.from.email.to_string(), "ps@example.com");
        assert!(c.credentials.is_none());
        let c = with(&[
            "--smtp-host",
            "::1",
            "--smtp-tls",
            "TLS",
            "--smtp-from",
            "ps@example.com",
            "--smtp-username",
            "u",
            "--smtp-password",
            "p",
        ])
        .unwrap()
        .unwrap();
        assert_eq!((c.port, c.tls), (465, SmtpTls::Tls));
        assert_eq!(c.credentials, Some(("u".into(), "p".into())));
        assert!(!format!("{c:?}").contains("\"p\""), "no password in logs");
        for (args, message) in [
            (&["--smtp-host", "h"][..], "PS_SMTP_FROM is not"),
            (
                &["--smtp-host", "h", "--smtp-from", "not an address"],
                "PS_SMTP_FROM must be",
            ),
            (
                &["--smtp-host", "h:25", "--smtp-from", "a@b.c"],
                "PS_SMTP_HOST must be",
            ),
            (
                &[
                    "--smtp-host",
                    "h",
                    "--smtp-from",
                    "a@b.c",
                    "--smtp-tls",
                    "ssl",
                ],
                "PS_SMTP_TLS must be",
            ),
            (
                &[
                    "--smtp-host",
                    "h",
                    "--smtp-from",
                    "a@b.c",
                    "--smtp-username",
                    "u",
                ],
                "PS_SMTP_PASSWORD (or PS_SMTP_PASSWORD_FILE) is not",
            ),
            (
                &[
                    "--smtp-host",
                    "h",
                    "--smtp-from",
                    "a@b.c",
                    "--smtp-ca-file",
                    "/nonexistent",
                ],
                "could not read PS_SMTP_CA_FILE",
            ),
        ] {
            let err = with(args).unwrap_err().to_string();
            assert!(err.contains(message), "{args:?}: {err}");
        }
    }
}
