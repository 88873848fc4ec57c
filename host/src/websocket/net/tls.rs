//! TLS client settings: the system's roots plus any CA certificates the caller adds, or no verification at all when
//! it insists ([`TlsSettings::insecure`]).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Which servers TLS connections trust.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// Trust the operating system's root certificates.
    pub native_roots: bool,
    /// Also trust these certificates (for example a private CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Trust any certificate. Only for testing against servers you control.
    pub insecure: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings { native_roots: true, extra_roots: Vec::new(), insecure: false }
    }
}

impl TlsSettings {
    /// Read every certificate of a PEM file.
    pub fn read_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
        let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
        if certs.is_empty() {
            return Err("no PEM certificate in it".into());
        }
        Ok(certs)
    }

    /// The rustls configuration these settings describe.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let config = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(TrustAnything(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            if self.native_roots {
                // Unreadable system certificates are skipped, as browsers and curl do.
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
            for cert in &self.extra_roots {
                roots.add(cert.clone()).map_err(|e| format!("unusable CA certificate: {e}"))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(Arc::new(config))
    }
}

/// Accepts any certificate, but still checks that the server holds its key (so the handshake is sound).
#[derive(Debug)]
struct TrustAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for TrustAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
