//! Arbitrary bytes as a token, and edits of a valid token, through
//! `Verifier::verify` and `Verifier::verify_as`: never a panic, never an
//! edited token accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_fuzz::{keyed, ISSUER, REFRESH_TYPE};
use signet_verify::AccessClaims;

fuzz_target!(|data: &[u8]| {
    let keyed = keyed();
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        // The bytes themselves (lossy when they are not UTF-8).
        let token = String::from_utf8_lossy(rest);
        let _ = keyed.verifier.verify(&token);
        let _ = keyed.verifier.verify_as::<AccessClaims>(&token, REFRESH_TYPE, ISSUER);
        return;
    }
    // Edits of the valid token: (position, byte) pairs; byte 0 deletes.
    let mut token = keyed.access.clone().into_bytes();
    for edit in rest.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % (token.len() + 1);
        match edit[2] {
            0 if at < token.len() => {
                token.remove(at);
            }
            0 => {}
            byte if at < token.len() && byte % 2 == 0 => token[at] = byte >> 1,
            byte => token.insert(at, byte >> 1),
        }
    }
    let Ok(token) = String::from_utf8(token) else { return };
    let verdict = keyed.verifier.verify(&token);
    if token != keyed.access {
        assert!(verdict.is_err(), "an edited token was accepted: {token}");
    }
    let _ = keyed.verifier.verify_as::<AccessClaims>(&token, REFRESH_TYPE, ISSUER);
});
