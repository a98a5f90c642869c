//! Request-body parsing: serde_json into `Value` (what every JSON body goes
//! through first) and into the verifier's claim types. Whatever parses
//! serializes and parses again; the claim types (no floats, whose last bit
//! serde_json does not promise to keep) come back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use signet_verify::{AccessClaims, Audience};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let text = serde_json::to_vec(&value).unwrap();
        assert!(serde_json::from_slice::<Value>(&text).is_ok(), "serialized JSON does not parse");
    }
    if let Ok(claims) = serde_json::from_slice::<AccessClaims>(data) {
        let again: AccessClaims = serde_json::from_slice(&serde_json::to_vec(&claims).unwrap()).unwrap();
        assert_eq!(claims, again);
    }
    if let Ok(audience) = serde_json::from_slice::<Audience>(data) {
        let again: Audience = serde_json::from_slice(&serde_json::to_vec(&audience).unwrap()).unwrap();
        assert_eq!(audience, again);
    }
});
