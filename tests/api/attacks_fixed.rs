//! Two attacks the first version accepted, found by the attack suite and the
//! fuzzer and fixed since: `nbf` on refresh tokens, and invalid UTF-8 in a
//! claim the verifier does not read. Both tokens are signed with the
//! service's own key: they were strictness gaps, not bypasses.

use crate::attacks::{json_bytes, nbf_attacks, run, splice, with, Attack, Path, MARK, NOT_UTF8};
use crate::backend_tests;
use crate::helpers::TestApp;

backend_tests!(refresh_path_honours_nbf, non_utf8_in_an_unread_claim_is_rejected);

/// `RefreshClaims` (src/tokens/mod.rs) has no `nbf` and its `TimeBound::nbf`
/// returns `None`, so a refresh token with `nbf` in the future or malformed
/// is accepted; API.md: "nbf honoured" everywhere, RFC 7519 §4.1.5.
async fn refresh_path_honours_nbf(app: TestApp) {
    let mut attacks = vec![Attack::control()];
    attacks.extend(nbf_attacks().into_iter().map(|attack| attack.on(&[Path::Refresh])));
    run(&app, attacks).await;
}

/// serde_json skips the strings of fields it ignores without checking their
/// UTF-8, so a payload with invalid UTF-8 in an unknown claim passes the
/// verifier (crates/signet-verify/src/verifier.rs, `verify_with`) on both
/// paths. RFC 7519 §7.2 / RFC 8259 §8.1: the JSON must be UTF-8.
async fn non_utf8_in_an_unread_claim_is_rejected(app: TestApp) {
    let mut attacks = vec![Attack::control()];
    for (what, bytes) in NOT_UTF8 {
        attacks.push(Attack::rejected(format!("payload: unknown claim with {what}"), move |f, t, _| {
            let claims = splice(&with(&t.claims, "x-note", MARK), bytes);
            f.sign_bytes(&json_bytes(&t.header), &claims)
        }));
    }
    run(&app, attacks).await;
}
