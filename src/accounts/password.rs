//! Password hashing and the password policy.
//!
//! Hashes are `bcrypt_sha256$<bcrypt hash>`: the password is SHA-256'd (hex)
//! before bcrypt so every byte counts (plain bcrypt silently ignores bytes past
//! 72), and the scheme name is stored so it can change later. This is
//! byte-for-byte Django's `bcrypt_sha256` format, so those hashes verify as
//! they are. A hash of an older scheme or another cost verifies and asks to be
//! re-hashed.
//!
//! Older schemes, as Django stores them (users imported with
//! `signet users import`), verify and always ask to be re-hashed:
//! - `bcrypt$<bcrypt hash>` (plain bcrypt over the password),
//! - `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` and `pbkdf2_sha1$...`,
//! - `argon2$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>` and `argon2$argon2i$...`.
//!
//! Anything else never matches: Django's unusable-password mark (`!...`),
//! [`UNUSABLE_HASH`], an empty or unknown scheme, a malformed hash, or work
//! factors past the caps below (a hash from an import must not be able to pin
//! a login thread for minutes). Such a check still costs one bcrypt at the
//! configured cost, like an unknown user.
//!
//! Checks against an older scheme, or a bcrypt cost above the configured one,
//! pass a gate that lets [`MAX_CONCURRENT_SLOW_CHECKS`] run at once, so a
//! burst of logins by imported users cannot take every core (or, with
//! Argon2, gigabytes of memory); the others wait their turn.

use std::num::NonZeroU32;
use std::sync::{Condvar, Mutex};

use argon2::password_hash::{Decimal, PasswordHash, PasswordHasher as _};
use argon2::{Argon2, Params as Argon2Params};
use aws_lc_rs::pbkdf2;
use base64::Engine;
use sha2::{Digest, Sha256};
use zxcvbn::zxcvbn;

use crate::error::FieldError;

const SCHEME: &str = "bcrypt_sha256";
/// Plain bcrypt, as Django's `BCryptPasswordHasher` stores it (`bcrypt$$2b$...`).
const LEGACY_BCRYPT: &str = "bcrypt";
const PBKDF2_SHA256: &str = "pbkdf2_sha256";
const PBKDF2_SHA1: &str = "pbkdf2_sha1";
const ARGON2: &str = "argon2";
/// Stored for accounts that must set a new password: never matches (Django
/// marks unusable passwords with the same `!` prefix).
pub const UNUSABLE_HASH: &str = "!";
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// zxcvbn's cost grows with length; the first characters decide its score.
const STRENGTH_PREFIX_CHARS: usize = 128;
/// Caps on imported work factors, about ten times Django's defaults (PBKDF2:
/// 1,000,000 iterations; Argon2: 100 MiB, 2 passes, 8 lanes; bcrypt: 12).
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
pub const MAX_ARGON2_MEMORY_KIB: u32 = 1024 * 1024;
pub const MAX_ARGON2_PASSES: u32 = 20;
/// Memory times passes: 1 GiB once, or 100 MiB twenty times, not both.
pub const MAX_ARGON2_MEMORY_KIB_PASSES: u64 = 10 * 100 * 1024 * 2;
pub const MAX_ARGON2_LANES: u32 = 64;
/// Each step doubles the work: 15 is eight times Django's 12 (seconds, not
/// the days a cost of 31 takes). A configured `passwords.bcrypt_cost` above
/// it still verifies signet's own hashes.
pub const MAX_BCRYPT_COST: u32 = 15;
/// Slow checks (older schemes, bcrypt above the configured cost) at once.
pub const MAX_CONCURRENT_SLOW_CHECKS: usize = 2;
/// argon2-cffi's version 0x10 ("v=16"), assumed when a hash names none.
const ARGON2_VERSION_10: Decimal = 0x10;

#[derive(Debug, Clone, Copy)]
pub struct PasswordHasher {
    cost: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    pub needs_rehash: bool,
}

/// A stored hash that can match, parsed.
enum Stored<'a> {
    BcryptSha256(&'a str),
    Bcrypt(&'a str),
    Pbkdf2 { algorithm: pbkdf2::Algorithm, iterations: NonZeroU32, salt: &'a str, derived: Vec<u8> },
    Argon2 { hash: Box<PasswordHash<'a>>, params: Argon2Params },
}

impl PasswordHasher {
    pub fn new(cost: u32) -> Self {
        PasswordHasher { cost }
    }

    /// Slow on purpose: call from a blocking thread (`web::block`).
    pub fn hash(&self, password: &str) -> anyhow::Result<String> {
        Ok(format!("{SCHEME}${}", bcrypt::hash(prehash(password), self.cost)?))
    }

    /// Slow on purpose: call from a blocking thread (`web::block`). Every
    /// comparison is constant-time (bcrypt's, aws-lc's PBKDF2 `verify`,
    /// argon2's `Output` equality).
    pub fn verify(&self, password: &str, stored: &str) -> Verification {
        let Some(parsed) = parse(stored, self.cost.max(MAX_BCRYPT_COST)) else {
            // Cost the same as a real check, so an unusable account does not
            // stand out from a wrong password or an unknown user.
            let _ = bcrypt::hash(prehash(password), self.cost);
            return Verification { matches: false, needs_rehash: false };
        };
        let current_scheme = matches!(&parsed, Stored::BcryptSha256(hash) if bcrypt_cost(hash) <= Some(self.cost));
        let _permit = (!current_scheme).then(|| SLOW_CHECKS.enter());
        let (matches, current) = match &parsed {
            Stored::BcryptSha256(hash) => {
                (bcrypt::verify(prehash(password), hash).unwrap_or(false), bcrypt_cost(hash) == Some(self.cost))
            }
            Stored::Bcrypt(hash) => (bcrypt::verify(password, hash).unwrap_or(false), false),
            Stored::Pbkdf2 { algorithm, iterations, salt, derived } => {
                (pbkdf2::verify(*algorithm, *iterations, salt.as_bytes(), password.as_bytes(), derived).is_ok(), false)
            }
            Stored::Argon2 { hash, params } => (verify_argon2(password, hash, params), false),
        };
        Verification { matches, needs_rehash: matches && !current }
    }
}

/// Whether `stored` is a hash [`PasswordHasher::verify`] can ever match: a
/// known scheme, well-formed, within the work-factor caps.
pub fn is_usable(stored: &str) -> bool {
    parse(stored, MAX_BCRYPT_COST).is_some()
}

/// Which work factor of `stored` passes which cap, in words for an import
/// report (names the scheme and the numbers, nothing else of the hash); None
/// when within the caps or not a hash of a known scheme at all.
pub fn over_caps(stored: &str) -> Option<String> {
    let (scheme, rest) = stored.split_once('$')?;
    match scheme {
        SCHEME | LEGACY_BCRYPT => {
            let cost = bcrypt_cost(rest)?;
            (cost > MAX_BCRYPT_COST).then(|| format!("bcrypt cost {cost} is over the cap of {MAX_BCRYPT_COST}"))
        }
        PBKDF2_SHA256 | PBKDF2_SHA1 => {
            let iterations: u64 = rest.split('$').next()?.parse().ok()?;
            (iterations > u64::from(MAX_PBKDF2_ITERATIONS))
                .then(|| format!("{iterations} iterations are over the cap of {MAX_PBKDF2_ITERATIONS}"))
        }
        ARGON2 => {
            let hash = PasswordHash::new(&stored[scheme.len()..]).ok()?;
            let params = Argon2Params::try_from(&hash).ok()?;
            argon2_over_caps(&params)
        }
        _ => None,
    }
}

fn argon2_over_caps(params: &Argon2Params) -> Option<String> {
    let (memory, passes, lanes) = (params.m_cost(), params.t_cost(), params.p_cost());
    if memory > MAX_ARGON2_MEMORY_KIB {
        Some(format!("argon2 memory of {memory} KiB is over the cap of {MAX_ARGON2_MEMORY_KIB} KiB"))
    } else if passes > MAX_ARGON2_PASSES {
        Some(format!("argon2 passes ({passes}) are over the cap of {MAX_ARGON2_PASSES}"))
    } else if u64::from(memory) * u64::from(passes) > MAX_ARGON2_MEMORY_KIB_PASSES {
        Some(format!(
            "argon2 memory times passes ({memory} KiB x {passes}) is over the cap of {MAX_ARGON2_MEMORY_KIB_PASSES}"
        ))
    } else if lanes > MAX_ARGON2_LANES {
        Some(format!("argon2 lanes ({lanes}) are over the cap of {MAX_ARGON2_LANES}"))
    } else {
        None
    }
}

/// A counting semaphore: at most `limit` holders of a [`Permit`] at once;
/// the others block (on a blocking-pool thread) until one is dropped.
pub struct Gate {
    limit: usize,
    running: Mutex<usize>,
    freed: Condvar,
}

pub struct Permit<'a>(&'a Gate);

static SLOW_CHECKS: Gate = Gate::new(MAX_CONCURRENT_SLOW_CHECKS);

impl Gate {
    pub const fn new(limit: usize) -> Gate {
        Gate { limit, running: Mutex::new(0), freed: Condvar::new() }
    }

    pub fn enter(&self) -> Permit<'_> {
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while *running >= self.limit {
            running = self.freed.wait(running).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *running += 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut running = self.0.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *running -= 1;
        self.0.freed.notify_one();
    }
}

/// Django's hasher names: the only scheme names a report repeats, since the
/// field might hold anything, even a plain password.
const DJANGO_SCHEMES: [&str; 11] = [
    SCHEME,
    LEGACY_BCRYPT,
    PBKDF2_SHA256,
    PBKDF2_SHA1,
    ARGON2,
    "scrypt",
    "sha1",
    "md5",
    "unsalted_sha1",
    "unsalted_md5",
    "crypt",
];

/// The scheme of a stored hash, for reports: one of Django's hasher names,
/// `unusable` (`!...`), `empty` or `unknown`; never any other part of it.
pub fn scheme_name(stored: &str) -> &'static str {
    if stored.is_empty() {
        return "empty";
    }
    if stored.starts_with('!') {
        return "unusable";
    }
    let scheme = stored.split_once('$').map_or("", |(scheme, _)| scheme);
    DJANGO_SCHEMES.into_iter().find(|known| *known == scheme).unwrap_or("unknown")
}

/// A usable hash, parsed; bcrypt costs up to `max_bcrypt_cost`.
fn parse(stored: &str, max_bcrypt_cost: u32) -> Option<Stored<'_>> {
    let (scheme, rest) = stored.split_once('$')?;
    let bcrypt_within = |hash: &str| bcrypt_cost(hash).is_some_and(|cost| cost <= max_bcrypt_cost);
    match scheme {
        SCHEME => bcrypt_within(rest).then_some(Stored::BcryptSha256(rest)),
        LEGACY_BCRYPT => bcrypt_within(rest).then_some(Stored::Bcrypt(rest)),
        PBKDF2_SHA256 => parse_pbkdf2(pbkdf2::PBKDF2_HMAC_SHA256, rest),
        PBKDF2_SHA1 => parse_pbkdf2(pbkdf2::PBKDF2_HMAC_SHA1, rest),
        // Django stores argon2-cffi's PHC string after its own `argon2` prefix.
        ARGON2 => parse_argon2(&stored[scheme.len()..]),
        _ => None,
    }
}

/// `<iterations>$<salt>$<base64 of the derived key>`; Django uses the salt's
/// characters as the salt bytes.
fn parse_pbkdf2(algorithm: pbkdf2::Algorithm, rest: &str) -> Option<Stored<'_>> {
    let mut parts = rest.split('$');
    let (iterations, salt, hash) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || salt.is_empty() {
        return None;
    }
    let iterations = NonZeroU32::new(iterations.parse().ok()?).filter(|n| n.get() <= MAX_PBKDF2_ITERATIONS)?;
    let derived = base64::engine::general_purpose::STANDARD.decode(hash).ok()?;
    (1..=64).contains(&derived.len()).then_some(Stored::Pbkdf2 { algorithm, iterations, salt, derived })
}

/// `$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>` (or `$argon2i$`): the PHC
/// string argon2-cffi writes, which Django stores after `argon2`.
fn parse_argon2(phc: &str) -> Option<Stored<'_>> {
    if !(phc.starts_with("$argon2id$") || phc.starts_with("$argon2i$")) {
        return None;
    }
    let hash = PasswordHash::new(phc).ok()?;
    let params = Argon2Params::try_from(&hash).ok()?;
    if let Some(version) = hash.version {
        argon2::Version::try_from(version).ok()?;
    }
    let within_caps = argon2_over_caps(&params).is_none();
    (within_caps && hash.salt.is_some() && hash.hash.is_some()).then(|| Stored::Argon2 { hash: Box::new(hash), params })
}

/// Recomputes with the hash's own variant, version and parameters and compares
/// the outputs (constant-time `Output` equality). A hash without `v=` is
/// argon2 1.0, as argon2-cffi reads it.
fn verify_argon2(password: &str, hash: &PasswordHash<'_>, params: &Argon2Params) -> bool {
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let version = hash.version.unwrap_or(ARGON2_VERSION_10);
    match Argon2::default().hash_password_customized(
        password.as_bytes(),
        Some(hash.algorithm),
        Some(version),
        params.clone(),
        salt,
    ) {
        Ok(computed) => computed.hash.is_some_and(|output| output == expected),
        Err(_) => false,
    }
}

fn prehash(password: &str) -> String {
    let digest = Sha256::digest(password.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cost of a `$2b$12$...` hash.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub min_strength: u8,
}

impl PasswordPolicy {
    /// Every breach is reported under `password`; the caller answers 422 weak_password.
    pub fn check(&self, password: &str, username: &str, email: Option<&str>) -> Result<(), Vec<FieldError>> {
        let mut problems = Vec::new();
        let chars = password.chars().count();
        if chars < self.min_length {
            problems.push(format!("must be at least {} characters long", self.min_length));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            problems.push(format!("must be at most {MAX_PASSWORD_BYTES} bytes long"));
        }
        if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
            problems.push("must not contain the username".to_owned());
        }
        if problems.is_empty() {
            let prefix: String = password.chars().take(STRENGTH_PREFIX_CHARS).collect();
            let email_name = email.and_then(|e| e.split('@').next()).unwrap_or("");
            let inputs: Vec<&str> = [username, email_name].into_iter().filter(|s| !s.is_empty()).collect();
            let estimate = zxcvbn(&prefix, &inputs);
            if u8::from(estimate.score()) < self.min_strength {
                let hint = estimate
                    .feedback()
                    .and_then(|f| f.warning().map(|w| w.to_string()))
                    .unwrap_or_else(|| "is too easy to guess".to_owned());
                problems.push(format!("is too weak: {hint}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.into_iter().map(|p| FieldError::new("password", p)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_past_72_count() {
        let hasher = PasswordHasher::new(4);
        let base = "x".repeat(72);
        let stored = hasher.hash(&format!("{base}A")).expect("hash");
        assert!(hasher.verify(&format!("{base}A"), &stored).matches);
        assert!(!hasher.verify(&format!("{base}B"), &stored).matches);
    }

    #[test]
    fn other_cost_and_legacy_scheme_need_rehash() {
        let stored = PasswordHasher::new(5).hash("correct horse battery").expect("hash");
        let v = PasswordHasher::new(4).verify("correct horse battery", &stored);
        assert_eq!(v, Verification { matches: true, needs_rehash: true });
        let legacy = format!("bcrypt${}", bcrypt::hash("correct horse battery", 4).expect("hash"));
        let v = PasswordHasher::new(4).verify("correct horse battery", &legacy);
        assert_eq!(v, Verification { matches: true, needs_rehash: true });
        assert!(!PasswordHasher::new(4).verify("wrong", &legacy).matches);
        assert!(!PasswordHasher::new(4).verify("x", "garbage").matches);
    }

    /// Made by Django 5.2's own hashers, subclassed only to lower the work
    /// factors (as tests/fixtures/make_django_fixture.py subclasses
    /// Argon2PasswordHasher for argon2i), for the password below.
    const DJANGO_PASSWORD: &str = "Grüße aus Köln ☕ 42";
    const DJANGO_HASHES: [&str; 6] = [
        "argon2$argon2id$v=19$m=64,t=1,p=2$M0c4YUVBNkRJRUdNUFdKU05nbll6OQ$2xEOQsMasHr2Gd280i9mhak9s0cALBHYqqyNKeqfv/4",
        "argon2$argon2i$v=19$m=64,t=1,p=2$YklhVmNOeGxmUEVabkR3SzF2eWhRbg$D67CFjqa/mcuqjNQ0YQbXR2I4OPwh6KNliZkDHA5bHk",
        "pbkdf2_sha256$1000$d0LbZu0yf6USg9fzJiasCZ$KZ7j2TXDRjBRNKwtT6QO9aohRBchbkwCqIpTSMsSCvE=",
        "pbkdf2_sha1$1000$7QGchsFmmSEfdYO6c2UQPV$3ni98eXOgL/C/fpyhch+yrCm2rg=",
        "bcrypt_sha256$$2b$04$JCUS.qntpNuLiERmdLmDh.hoN5HVkx4CF1.2iCWoI2eaic7UhU/ly",
        "bcrypt$$2b$04$hQ7TDK92TxWZs9/bgLSc0OvW1/i6E4U5.KgSXwMhllZB9oolcAtDu",
    ];

    #[test]
    fn django_hashes_verify_and_ask_for_rehash() {
        let hasher = PasswordHasher::new(5);
        for stored in DJANGO_HASHES {
            assert!(is_usable(stored), "{stored}");
            assert_eq!(hasher.verify(DJANGO_PASSWORD, stored), Verification { matches: true, needs_rehash: true });
            assert_eq!(
                hasher.verify("Grüße aus Köln ☕ 43", stored),
                Verification { matches: false, needs_rehash: false }
            );
            assert!(!hasher.verify("", stored).matches, "{stored}");
        }
    }

    #[test]
    fn django_bcrypt_sha256_is_signets_own_scheme() {
        // Same bytes as signet's scheme: at the configured cost it stays as it is.
        let stored = DJANGO_HASHES[4];
        let v = PasswordHasher::new(4).verify(DJANGO_PASSWORD, stored);
        assert_eq!(v, Verification { matches: true, needs_rehash: false });
        let ours = PasswordHasher::new(4).hash(DJANGO_PASSWORD).expect("hash");
        assert!(ours.starts_with("bcrypt_sha256$$2b$04$"));
    }

    #[test]
    fn argon2_without_version_is_argon2_1_0() {
        // argon2-cffi at version 0x10 with `v=16$` dropped, as Django 1.10's
        // earliest argon2 hashes were stored; Django verifies it.
        let stored = "argon2$argon2i$m=64,t=1,p=2$c2FsdHNhbHRzYWx0$RCJSIXn++Se4lDW73ueo5GCW2EAM18MIXtoLTCUKlbg";
        assert!(PasswordHasher::new(4).verify(DJANGO_PASSWORD, stored).matches);
        let explicit = stored.replace("$m=", "$v=16$m=");
        assert!(PasswordHasher::new(4).verify(DJANGO_PASSWORD, &explicit).matches);
        let wrong_version = stored.replace("$m=", "$v=19$m=");
        assert!(!PasswordHasher::new(4).verify(DJANGO_PASSWORD, &wrong_version).matches);
    }

    #[test]
    fn unusable_unknown_and_malformed_hashes_never_match() {
        let hasher = PasswordHasher::new(4);
        let pbkdf2 = DJANGO_HASHES[2];
        let argon2 = DJANGO_HASHES[0];
        let never = [
            "".to_owned(),
            "!".to_owned(),
            UNUSABLE_HASH.to_owned(),
            "!nsnF0QPYx0vTmPeHc6ZpdGV1O3sZYVnaodDHQ1q1".to_owned(),
            format!("!{pbkdf2}"),
            "md5$salt$0123456789abcdef0123456789abcdef".to_owned(),
            "unsalted_md5$$0123456789abcdef0123456789abcdef".to_owned(),
            DJANGO_PASSWORD.to_owned(),
            pbkdf2.replace("$1000$", "$0$"),
            pbkdf2.replace("$1000$", "$ten$"),
            pbkdf2.replace("$1000$", "$4000000000$"),
            pbkdf2.replace("=", "$extra"),
            pbkdf2.replace("KZ7j", "*Z7j"),
            "pbkdf2_sha256$1000$$KZ7j2TXDRjBRNKwtT6QO9aohRBchbkwCqIpTSMsSCvE=".to_owned(),
            "pbkdf2_sha256$1000$salt$".to_owned(),
            argon2.replace("argon2id", "argon2d"),
            argon2.replace("m=64", "m=4194304"),
            argon2.replace("t=1", "t=1000"),
            argon2.replace("p=2", "p=1000"),
            argon2.replace("v=19", "v=42"),
            argon2.rsplit_once('$').expect("hash").0.to_owned(),
            "argon2$argon2id$v=19$m=64,t=1,p=2".to_owned(),
            "bcrypt$".to_owned(),
            "bcrypt_sha256$not-bcrypt".to_owned(),
            // Over the work-factor caps: a cost of 31 would take days.
            DJANGO_HASHES[5].replace("$2b$04$", "$2b$31$"),
            DJANGO_HASHES[4].replace("$2b$04$", "$2b$16$"),
            argon2.replace("m=64,t=1", "m=262144,t=20"),
            argon2.replace("t=1", "t=21"),
            pbkdf2.replace("$1000$", "$10000001$"),
        ];
        for stored in &never {
            assert!(!is_usable(stored), "{stored}");
            assert_eq!(hasher.verify(DJANGO_PASSWORD, stored), Verification { matches: false, needs_rehash: false });
        }
        assert_eq!(scheme_name(pbkdf2), "pbkdf2_sha256");
        assert_eq!(scheme_name(&format!("!{pbkdf2}")), "unusable");
        assert_eq!(scheme_name(""), "empty");
        assert_eq!(scheme_name(DJANGO_PASSWORD), "unknown");
    }

    #[test]
    fn over_caps_names_the_factor_and_the_cap() {
        let bcrypt = DJANGO_HASHES[5].replace("$2b$04$", "$2b$31$");
        assert_eq!(over_caps(&bcrypt).as_deref(), Some("bcrypt cost 31 is over the cap of 15"));
        let pbkdf2 = DJANGO_HASHES[2].replace("$1000$", "$20000000$");
        assert!(over_caps(&pbkdf2).expect("over").contains("20000000 iterations"));
        let argon2 = DJANGO_HASHES[0].replace("m=64,t=1", "m=262144,t=20");
        assert!(over_caps(&argon2).expect("over").contains("memory times passes"));
        for within in DJANGO_HASHES {
            assert_eq!(over_caps(within), None, "{within}");
        }
        assert_eq!(over_caps("md5$salt$abc"), None);
    }

    #[test]
    fn the_gate_lets_at_most_its_limit_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let gate = Gate::new(2);
        let (running, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    let _permit = gate.enter();
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    /// The committed fixture: Django's default work factors (PBKDF2 at
    /// 1,000,000 iterations, Argon2 at 100 MiB, bcrypt at 12).
    #[test]
    fn django_fixture_hashes_at_default_work_factors_verify() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/django_users.json")).expect("fixture");
        let passwords = [
            ("ada", "pbkdf2-sha256 Lovelace 1815!"),
            ("Bob.Sha1", "pbkdf2-sha1 Builder 1998?"),
            ("cyd", "argon2id Charisse 1922 #"),
            ("dee_argon2i", "argon2i legacy Dee 2015 %"),
            ("fay", "plain bcrypt Fay 2003 &"),
        ];
        let hasher = PasswordHasher::new(12);
        for (username, password) in passwords {
            let record = fixture
                .as_array()
                .expect("list")
                .iter()
                .find(|r| r["fields"]["username"] == username)
                .expect("user in fixture");
            let stored = record["fields"]["password"].as_str().expect("hash");
            assert_eq!(
                hasher.verify(password, stored),
                Verification { matches: true, needs_rehash: true },
                "{username}"
            );
        }
    }

    #[test]
    fn policy_rejects_common_short_long_and_username() {
        let policy = PasswordPolicy { min_length: 8, min_strength: 3 };
        assert!(policy.check("password1", "alice", None).is_err());
        assert!(policy.check("Tr0ub4!", "alice", None).is_err());
        assert!(policy.check(&"Zq9!".repeat(300), "alice", None).is_err());
        assert!(policy.check("alice-Zq9!vx7#Lm", "alice", None).is_err());
        assert!(policy.check("violet-canyon-73-drift", "alice", None).is_ok());
    }
}
