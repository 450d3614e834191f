"""Where moto spends CPU that AWS does not, on every request or on a common one, take it
out: the sandbox answers from one process on the machine the runbooks run on, and what it
burns comes out of theirs. What the sandbox answers is unchanged. Installed by
``moto_fixes.apply``, once, in the sandbox's process."""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any


def install() -> None:
    _actions_are_listed_once_per_class()
    _services_are_listed_once()
    _certificates_are_signed_with_one_key()
    _symmetric_keys_share_one_unused_key_pair()


def _actions_are_listed_once_per_class() -> None:
    """moto lists a response class's methods (``inspect.getmembers``) on every request to find
    the action's: ~0.3 ms for EC2's, each call. The classes do not change: list them once."""
    from moto.core import responses, utils

    responses.method_names_from_class = functools.cache(utils.method_names_from_class)


def _services_are_listed_once() -> None:
    """moto's server finds a request's service by asking, on every request, whether the host
    names one of its packages: it lists its own directory and stats each of ~170 entries
    (each ``stat`` lets go of the GIL and waits to take it back while other requests run).
    The installed packages do not change: list them once."""
    from moto import backends

    listing = backends.list_of_moto_modules
    backends.list_of_moto_modules = functools.cache(lambda: frozenset(listing()))  # type: ignore[assignment]


def _certificates_are_signed_with_one_key() -> None:
    """ACM: moto makes a 2048-bit RSA key for each requested certificate and then checks it
    (~0.11 s of CPU a certificate, holding the GIL). AWS never hands out an issued
    certificate's private key: the sandbox issues every certificate with one key, made on
    first use. An imported certificate's key is still read and checked."""
    import cryptography.x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from moto.acm import models

    @functools.cache
    def issuing() -> tuple[Any, bytes]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.TraditionalOpenSSL,
            encryption_algorithm=serialization.NoEncryption(),
        )
        return key, pem

    # moto.acm reaches the key generator through its module's ``cryptography`` name: give it
    # one whose generator hands back the issuing key (and the real x509 for the rest).
    asymmetric = SimpleNamespace(rsa=SimpleNamespace(generate_private_key=lambda **_: issuing()[0]))
    models.cryptography = SimpleNamespace(  # type: ignore[assignment]
        x509=cryptography.x509,
        hazmat=SimpleNamespace(primitives=SimpleNamespace(asymmetric=asymmetric)),
    )
    check = models.CertBundle.validate_pk

    def validate_pk(self: Any) -> Any:
        key, pem = issuing()
        return key if self.key == pem else check(self)

    models.CertBundle.validate_pk = validate_pk  # type: ignore[method-assign]


def _symmetric_keys_share_one_unused_key_pair() -> None:
    """KMS: moto makes a 2048-bit RSA key pair for every key it creates, symmetric ones too
    (15-100 ms of CPU each, 45 ms on average measured here), for signing, which KMS refuses
    with a symmetric key. The sandbox gives every key whose spec is not asymmetric one key
    pair, made on first use; an asymmetric key (RSA_*, ECC_*) still gets its own."""
    from moto.kms import models, utils

    make = utils.generate_private_key
    shared = functools.cache(lambda: make("RSA_2048"))

    def generate_private_key(key_spec: str) -> Any:
        return make(key_spec) if key_spec.startswith(("RSA_", "ECC_")) else shared()

    models.generate_private_key = generate_private_key  # type: ignore[assignment]
