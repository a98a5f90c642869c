//! The verified-token cache: SHA-256 of the whole token → its verified claims.
//!
//! A client sends the same access token with every request for the token's
//! whole life, and a signature check costs far more than a hash. An entry is
//! keyed by the digest of the token's exact bytes, so a token that differs in
//! any byte (a forged signature, a tampered claim) can never hit; it is used
//! only while the token's time window (`nbf`/`exp` with the leeway, against the
//! verifier's clock) holds, and only with the key set it was verified with.
//! The map is bounded: sharded, each shard drops expired entries when full and
//! then an arbitrary one, so memory stays at `capacity` entries whatever
//! clients send (only tokens that verified are ever inserted).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use aws_lc_rs::digest;

use crate::claims::AccessClaims;

/// SHA-256 of a whole token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub(crate) fn of(token: &str) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        TokenDigest(out)
    }

    fn shard(&self, shards: usize) -> usize {
        // A byte the map's hash does not use.
        usize::from(self.0[31]) % shards
    }
}

impl Hash for TokenDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// The digest is already uniform: use 8 of its bytes as the hash.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Entry {
    claims: Arc<AccessClaims>,
    /// First second the token is no longer accepted (`exp + leeway`).
    expires: i64,
    /// First second the token is accepted (`nbf - leeway`).
    not_before: i64,
    /// The key set generation it was verified with.
    generation: u64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<TokenDigest, Entry, BuildHasherDefault<DigestHasher>>,
    /// No entry expires before this second (a lower bound).
    earliest_expiry: i64,
}

/// What a lookup found.
pub(crate) enum Lookup {
    Hit(Arc<AccessClaims>),
    /// These exact bytes verified before and have expired since.
    Expired,
    Miss,
}

pub(crate) struct TokenCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

/// Below this many entries per shard, one shard is enough.
const MIN_PER_SHARD: usize = 256;
const MAX_SHARDS: usize = 16;

impl TokenCache {
    /// A cache of at most `capacity` entries; 0 turns it off.
    pub(crate) fn new(capacity: usize) -> Self {
        let shards = (capacity / MIN_PER_SHARD).clamp(1, MAX_SHARDS);
        let per_shard = capacity / shards;
        TokenCache {
            shards: (0..if capacity == 0 { 0 } else { shards }).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        !self.shards.is_empty()
    }

    /// The most entries it holds (0 when off).
    pub(crate) fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    fn shard(&self, digest: &TokenDigest) -> Option<MutexGuard<'_, Shard>> {
        if self.shards.is_empty() {
            return None;
        }
        self.shards.get(digest.shard(self.shards.len())).map(lock)
    }

    pub(crate) fn get(&self, digest: &TokenDigest, now: i64, generation: u64) -> Lookup {
        let Some(mut shard) = self.shard(digest) else {
            return Lookup::Miss;
        };
        let Some(entry) = shard.map.get(digest) else {
            return Lookup::Miss;
        };
        if entry.generation != generation {
            shard.map.remove(digest);
            return Lookup::Miss;
        }
        if now >= entry.expires {
            shard.map.remove(digest);
            return Lookup::Expired;
        }
        if now < entry.not_before {
            // Only a clock moved backwards gets here: verify afresh.
            return Lookup::Miss;
        }
        Lookup::Hit(entry.claims.clone())
    }

    pub(crate) fn insert(
        &self,
        digest: TokenDigest,
        claims: Arc<AccessClaims>,
        leeway: i64,
        generation: u64,
        now: i64,
    ) {
        let expires = claims.exp.saturating_add(leeway);
        let not_before = claims.nbf.map_or(i64::MIN, |nbf| nbf.saturating_sub(leeway));
        if expires <= now {
            return;
        }
        let Some(mut shard) = self.shard(&digest) else {
            return;
        };
        let per_shard = self.per_shard;
        if shard.map.len() >= per_shard && !shard.map.contains_key(&digest) {
            if now >= shard.earliest_expiry {
                shard.map.retain(|_, e| e.expires > now && e.generation == generation);
                shard.earliest_expiry = shard.map.values().map(|e| e.expires).min().unwrap_or(0);
            }
            while shard.map.len() >= per_shard {
                let Some(victim) = shard.map.keys().next().copied() else {
                    break;
                };
                shard.map.remove(&victim);
            }
        }
        if shard.map.is_empty() || expires < shard.earliest_expiry {
            shard.earliest_expiry = expires;
        }
        shard.map.insert(digest, Entry { claims, expires, not_before, generation });
    }

    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            shard.map.clear();
            shard.earliest_expiry = 0;
        }
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Audience;

    fn claims(sub: &str, exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "https://id.example".into(),
            sub: sub.into(),
            aud: Audience::One("signet".into()),
            exp,
            iat: exp - 900,
            nbf: Some(0),
            jti: sub.into(),
            client_id: "signet".into(),
            sid: "s".into(),
            roles: vec!["user".into()],
            preferred_username: None,
            amr: Vec::new(),
            status: None,
            scope: None,
            act: None,
        })
    }

    fn hit(cache: &TokenCache, token: &str, now: i64) -> Option<String> {
        match cache.get(&TokenDigest::of(token), now, 0) {
            Lookup::Hit(c) => Some(c.sub.clone()),
            _ => None,
        }
    }

    #[test]
    fn hit_until_exp_plus_leeway() {
        let cache = TokenCache::new(10);
        cache.insert(TokenDigest::of("a.b.c"), claims("alice", 1000), 30, 0, 500);
        assert_eq!(hit(&cache, "a.b.c", 500).as_deref(), Some("alice"));
        assert_eq!(hit(&cache, "a.b.c", 1029).as_deref(), Some("alice"));
        assert!(matches!(cache.get(&TokenDigest::of("a.b.c"), 1030, 0), Lookup::Expired));
        assert_eq!(cache.len(), 0, "expired entry dropped");
    }

    #[test]
    fn other_bytes_never_hit() {
        let cache = TokenCache::new(10);
        cache.insert(TokenDigest::of("a.b.c"), claims("alice", 1000), 0, 0, 500);
        for other in ["a.b.C", "a.b.c ", "a.b.", "", "a.b.cc"] {
            assert!(hit(&cache, other, 500).is_none(), "{other:?}");
        }
    }

    #[test]
    fn stale_key_generation_misses() {
        let cache = TokenCache::new(10);
        cache.insert(TokenDigest::of("t"), claims("alice", 1000), 0, 1, 500);
        assert!(matches!(cache.get(&TokenDigest::of("t"), 500, 2), Lookup::Miss));
    }

    #[test]
    fn not_yet_valid_misses() {
        let cache = TokenCache::new(10);
        let mut c = (*claims("alice", 1000)).clone();
        c.nbf = Some(100);
        cache.insert(TokenDigest::of("t"), Arc::new(c), 10, 0, 500);
        assert!(hit(&cache, "t", 90).is_some());
        // A clock moved back before nbf - leeway must not hit.
        assert!(hit(&cache, "t", 89).is_none());
    }

    #[test]
    fn stays_within_capacity() {
        for capacity in [1, 3, 255, 300, 5000] {
            let cache = TokenCache::new(capacity);
            assert!(cache.capacity() <= capacity);
            assert!(cache.capacity() * 10 >= capacity * 9, "{capacity}");
            for i in 0..capacity * 3 {
                cache.insert(TokenDigest::of(&format!("token-{i}")), claims("u", 10_000), 0, 0, 0);
                assert!(cache.len() <= capacity);
            }
            assert_eq!(cache.len(), cache.capacity());
            // The newest always went in.
            let last = format!("token-{}", capacity * 3 - 1);
            assert!(hit(&cache, &last, 0).is_some());
        }
    }

    #[test]
    fn full_cache_drops_expired_entries_first() {
        let cache = TokenCache::new(4);
        for i in 0..3 {
            cache.insert(TokenDigest::of(&format!("old-{i}")), claims("o", 100), 0, 0, 0);
        }
        cache.insert(TokenDigest::of("live"), claims("l", 10_000), 0, 0, 0);
        // At 200 the three old ones are expired: inserting keeps "live".
        cache.insert(TokenDigest::of("new"), claims("n", 10_000), 0, 0, 200);
        assert_eq!(cache.len(), 2);
        assert!(hit(&cache, "live", 200).is_some());
        assert!(hit(&cache, "new", 200).is_some());
    }

    #[test]
    fn capacity_zero_is_off() {
        let cache = TokenCache::new(0);
        assert!(!cache.enabled());
        cache.insert(TokenDigest::of("t"), claims("alice", 1000), 0, 0, 500);
        assert_eq!(cache.len(), 0);
        assert!(hit(&cache, "t", 500).is_none());
    }
}
