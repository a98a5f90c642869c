//! Whether an imported Django hash can be used, and if not, why (in words
//! that name the scheme and the work factor, never the hash itself).

use crate::accounts::password;

/// Why a stored Django value cannot be verified; names the scheme only.
pub(super) fn unusable_reason(stored: &str) -> String {
    let why = match password::scheme_name(stored) {
        "unusable" => "Django marks it unusable".to_owned(),
        "empty" => "it is empty".to_owned(),
        "unknown" => "it is not a recognised hash".to_owned(),
        scheme @ ("bcrypt_sha256" | "bcrypt" | "pbkdf2_sha256" | "pbkdf2_sha1" | "argon2") => {
            match password::over_caps(stored) {
                // Checking it at login would pin a thread for seconds or days.
                Some(excess) => format!("its {scheme} hash asks for too much work: {excess}"),
                None => format!("its {scheme} hash is malformed"),
            }
        }
        scheme => format!("signet does not verify {scheme} hashes"),
    };
    format!("password unusable ({why}): the user must be given a new one")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_reasons_name_the_scheme_only() {
        assert!(unusable_reason("!abc").contains("Django marks it unusable"));
        assert!(unusable_reason("md5$salt$abc").contains("does not verify md5"));
        assert!(unusable_reason("pbkdf2_sha256$0$salt$abc").contains("malformed"));
        let slow = "bcrypt$$2b$31$hQ7TDK92TxWZs9/bgLSc0OvW1/i6E4U5.KgSXwMhllZB9oolcAtDu";
        assert!(unusable_reason(slow).contains("bcrypt cost 31 is over the cap of 15"), "{}", unusable_reason(slow));
        let plaintext = unusable_reason("hunter2$secret");
        assert!(plaintext.contains("not a recognised hash") && !plaintext.contains("hunter2"), "{plaintext}");
    }
}
