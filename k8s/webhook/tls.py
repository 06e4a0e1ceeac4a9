"""TLS for the webhook server: a self-signed CA and a serving certificate it signs, generated at start.

Owns the key material the API server needs to trust dgdr's webhooks: `generate(directory, hosts)`
makes a fresh CA (10 years) and a serving certificate (1 year) for `hosts` (DNS names and IP
addresses as subject alternative names), writes `ca.crt`, `tls.crt` and `tls.key` (the key 0600)
into `directory`, and returns a `TlsFiles`; `TlsFiles.ca_bundle` is the base64 PEM that goes in a
webhook's or a CRD conversion's `clientConfig.caBundle`; `server_context()` is the ssl context the
server listens with.

`load(directory)` takes such files from elsewhere (a cert-manager Secret mounted in the pod).

Failure semantics: an unwritable directory raises OSError; `load` raises ConfigurationError when
tls.crt or tls.key is missing; nothing else fails for valid input.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dgdr.domain.errors import ConfigurationError


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path

    @property
    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()

    @property
    def ca_bundle(self) -> str:
        """The CA certificate, PEM, base64-encoded: the form `caBundle` fields take."""
        return base64.b64encode(self.ca_pem).decode()

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dgdr"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def load(directory: Path) -> TlsFiles:
    """The certificate and key in `directory` (tls.crt, tls.key; ca.crt when there is one, as in
    a cert-manager Secret); `ConfigurationError` when one of the two is missing."""
    cert, key, ca = directory / "tls.crt", directory / "tls.key", directory / "ca.crt"
    missing = [p.name for p in (cert, key) if not p.is_file()]
    if missing:
        raise ConfigurationError(f"--webhook-cert-dir {directory}: no {' or '.join(missing)}")
    return TlsFiles(ca if ca.is_file() else cert, cert, key)


def generate(directory: Path, hosts: list[str]) -> TlsFiles:
    """A new CA and a serving certificate for `hosts`, written into `directory`."""
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(minutes=5)  # tolerate a little clock skew
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("dgdr webhook CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.touch(mode=0o600)
    files.key.chmod(0o600)
    files.key.write_bytes(_pem_key(key))
    return files
