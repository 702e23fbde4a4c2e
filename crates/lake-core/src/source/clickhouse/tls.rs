//! TLS for `https://` servers: which certificates are trusted, and what a failed handshake means for the user.
//!
//! Without `clickhouse.ca_cert` the public CAs of the Mozilla root program are trusted (compiled in, so the
//! result does not depend on the host's certificate store); with it, only the certificates in that PEM file
//! (as `curl --cacert` does), which is how a self-signed deployment is reached.
//!
//! A server whose certificate is byte for byte one of those in `ca_cert` is accepted as pinned, whatever the
//! chain rules would say of it: `openssl req -x509` (the recipe of ClickHouse's own config comments) makes, with
//! OpenSSL 3, a self-signed certificate marked `CA:TRUE`, which WebPKI refuses as a server's own
//! (`CaUsedAsEndEntity`). The handshake still proves the server holds that certificate's key. A pinned
//! certificate's names and dates are not checked: the user named the exact certificate, as with SSH's known
//! hosts, and such certificates often name no host at all (only a CN). Any other certificate goes through the
//! full WebPKI checks (chain, names, dates) as before (docs/lake-format.md, "Run config").

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::{ErrorCode, LakeError, Result};

/// The client TLS settings: the trusted roots (and, with `ca_cert`, its certificates pinned), TLS 1.2 and 1.3,
/// no client certificate.
pub(crate) fn client_config(ca_cert: Option<&str>) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| LakeError::internal(format!("TLS set-up: {e}")))?;
    let Some(path) = ca_cert else {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    };
    let pinned = read_pem_file(Path::new(path))?;
    let mut roots = RootCertStore::empty();
    for cert in &pinned {
        // A certificate WebPKI cannot use as a root (no CA extensions, say) is still pinned.
        let _ = roots.add(cert.clone());
    }
    let verifier = PinnedOrChain {
        chain: (!roots.is_empty())
            .then(|| {
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
            })
            .transpose()
            .map_err(|e| LakeError::internal(format!("TLS set-up: {e}")))?,
        pinned,
        provider,
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

fn read_pem_file(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
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
    Ok(certs)
}

/// Accepts a server certificate that is one of `pinned`, and otherwise asks WebPKI with `ca_cert` as roots.
#[derive(Debug)]
struct PinnedOrChain {
    chain: Option<Arc<WebPkiServerVerifier>>,
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedOrChain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.chain {
            Some(chain) => {
                chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        }
    }

    // The handshake's signatures prove that the server holds the key of the certificate it sent, pinned or not.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
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
            "the server presents a CA certificate as its own: give exactly that certificate with \
             clickhouse.ca_cert (it is then pinned), or issue the server a certificate signed by that CA \
             (basicConstraints CA:FALSE)"
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
    fn a_certificate_listed_in_ca_cert_is_accepted_as_pinned_and_no_other() {
        let pinned = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let verifier = PinnedOrChain {
            chain: None,
            pinned: vec![pinned.clone()],
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        };
        let name = ServerName::try_from("clickhouse.example").unwrap();
        let now = UnixTime::now();
        assert!(verifier
            .verify_server_cert(&pinned, &[], &name, &[], now)
            .is_ok());
        let other = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x02]);
        assert_eq!(
            verifier
                .verify_server_cert(&other, &[], &name, &[], now)
                .unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
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
