//! TLS for `https://` servers: which certificates are trusted, and what a failed handshake means for the user.
//!
//! Without `clickhouse.ca_cert` the public CAs of the Mozilla root program are trusted (compiled in, so the
//! result does not depend on the host's certificate store); with it, only the certificates in that PEM file
//! (as `curl --cacert` does), which is how a self-signed deployment is reached.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::error::{ErrorCode, LakeError, Result};

/// The client TLS settings: the trusted roots, TLS 1.2 and 1.3, no client certificate.
pub(crate) fn client_config(ca_cert: Option<&str>) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    match ca_cert {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => add_pem_file(&mut roots, Path::new(path))?,
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LakeError::internal(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<()> {
    let bad = |what: String| {
        LakeError::invalid_config(format!(
            "clickhouse.ca_cert {}: {what}; give a PEM file holding the CA certificate (or the server's self-signed one)",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("cannot read it ({e})")))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM ({e})")))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".to_owned()));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| bad(format!("a certificate in it is not usable ({e})")))?;
    }
    Ok(())
}

/// The TLS error in `err`'s chain, if any. rustls errors travel inside `io::Error`s (sometimes one inside
/// another), whose `source()` skips the error they wrap, so each `io::Error` is opened with `get_ref`.
pub(crate) fn tls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// `CLICKHOUSE_TLS` for a failed handshake, saying what to check.
pub(crate) fn handshake_error(err: &rustls::Error, endpoint: &str, host: &str) -> LakeError {
    let advice = match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "its certificate is not signed by a CA this exporter trusts: give the CA's PEM file with \
             clickhouse.ca_cert (CLI: --ca-cert or CLICKHOUSE_CA_CERT)"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "its certificate is not issued for {host:?}: connect by a name the certificate names"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "its certificate has expired: renew it on the server".to_owned(),
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if other.to_string().contains("CaUsedAsEndEntity") =>
        {
            "the server presents a CA certificate as its own: issue it a server certificate signed by that CA \
             (basicConstraints CA:FALSE) and give the CA with clickhouse.ca_cert"
                .to_owned()
        }
        rustls::Error::InvalidMessage(_) => {
            "the answer is not TLS: check that this port serves HTTPS (8443 on most services), or use http://"
                .to_owned()
        }
        _ => "check the server's certificate and TLS settings, and clickhouse.ca_cert".to_owned(),
    };
    LakeError::new(
        ErrorCode::ClickhouseTls,
        format!("TLS with ClickHouse at {endpoint} failed ({err}); {advice}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_a_config_error() {
        let err = client_config(Some("/nonexistent/ca.pem")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConfig);
        assert!(err.message().contains("cannot read"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(empty.to_str()).unwrap_err();
        assert!(err.message().contains("no certificate"), "{err}");
    }

    #[test]
    fn public_roots_are_trusted_by_default() {
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn rustls_errors_are_found_inside_io_errors() {
        // As hyper-rustls reports it: an io::Error holding an io::Error holding the rustls error.
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(std::io::Error::other(io));
        let found = tls_error(boxed.as_ref()).expect("found");
        let err = handshake_error(found, "https://h:8443", "h");
        assert_eq!(err.code(), ErrorCode::ClickhouseTls);
        assert!(err.message().contains("ca_cert"), "{err}");
    }
}
