//! Key loading from untrusted text: a JWKS document (fetched over the
//! network by remote verifiers) and PEM public keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_verify::{Algorithm, KeySet};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = KeySet::from_jwks_json(&text);
    for algorithm in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let _ = KeySet::from_pem("k", algorithm, data);
    }
});
