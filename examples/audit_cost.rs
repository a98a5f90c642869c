//! What the audit trail adds to a login: the `login.succeeded` INSERT in the
//! transaction that starts the session. Three transactions, interleaved round
//! by round so they share the machine's noise, on one connection:
//!
//! - `session`: the session's own writes (session row, refresh token), no event;
//! - `session+audit`: the same plus the `login.succeeded` row, as a login writes it;
//! - `start_session`: the real login transaction (status index, token signing, event).
//!
//! The difference of the first two medians is the event's cost; set against
//! `start_session` (and the bcrypt check every login pays before it) it is
//! the share of a login's work. Prints medians in microseconds.
//!
//! cargo run --release --example audit_cost -- [DATABASE_URL] [ROUNDS]
//! (default: a temporary SQLite file, 2000 rounds)

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use signet::accounts::password::PasswordPolicy;
use signet::accounts::service::{check_registration, insert_user};
use signet::audit::{self, Actor, Event, EventType};
use signet::clock::{Clock, SystemClock};
use signet::config::Settings;
use signet::keys::service::KeyService;
use signet::sessions::model::{insert_refresh_token, insert_session, NewRefreshToken, Session};
use signet::sessions::service::{start_session, ClientInfo};

const MASTER_KEY: &str = "c2lnbmV0LXRlc3QtbWFzdGVyLWtleS0zMi1ieXRlcyE=";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = tempfile::tempdir()?;
    let url = args
        .next()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| format!("sqlite://{}/audit_cost.db", dir.path().display()));
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let settings = Settings::from_toml(&format!(
        "[database]\nurl = \"{url}\"\npool_size = 2\n[keys]\nmaster_key = \"{MASTER_KEY}\"\nreload_secs = 3600\n"
    ))?;
    let pool = signet::db::connect(&settings.database)?;
    let keys = KeyService::start(pool.clone(), &settings, Arc::new(SystemClock))?;
    let mut conn = pool.get()?;
    let policy = PasswordPolicy { min_length: 8, min_strength: 0 };
    let registration = check_registration(&policy, "costly", None, &["user".to_owned()], "violet-canyon-73-drift")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = insert_user(&mut conn, &Actor::system(), &registration, "$2b$04$not-a-real-hash", SystemClock.now_db())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let actor = Actor::user(&user.id, Some("203.0.113.9".into()));

    let (mut bare, mut with_event, mut full) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let now = SystemClock.now_db();
        for record in [false, true] {
            let session = Session {
                id: uuid::Uuid::new_v4().to_string(),
                user_id: user.id.clone(),
                created_at: now,
                last_used_at: now,
                expires_at: now + TimeDelta::days(30),
                user_agent: Some("audit_cost".into()),
                ip: actor.ip.clone(),
                revoked_at: None,
                revoked_reason: None,
            };
            let jti = signet::tokens::new_refresh_jti();
            let token = NewRefreshToken {
                jti: &jti,
                session_id: &session.id,
                user_id: &user.id,
                issued_at: now,
                expires_at: now + TimeDelta::days(14),
            };
            let started = Instant::now();
            audit::transaction(&mut conn, |conn| {
                insert_session(conn, &session)?;
                insert_refresh_token(conn, &token)?;
                if record {
                    let event = Event::new(EventType::LoginSucceeded, &actor, now)
                        .subject(&user.id)
                        .detail("session_id", &session.id);
                    audit::record(conn, event)?;
                }
                Ok::<_, diesel::result::Error>(())
            })?;
            let took = started.elapsed();
            if record {
                with_event.push(took)
            } else {
                bare.push(took)
            }
        }
        let signer = keys.signer(now).map_err(|e| anyhow::anyhow!("{e}"))?;
        let client = ClientInfo { user_agent: Some("audit_cost".into()), ip: actor.ip.clone() };
        let started = Instant::now();
        start_session(&mut conn, &settings.tokens, &settings.revocation, &signer, &user, client, now)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        full.push(started.elapsed());
    }
    let (bare, with_event, full) = (median(bare), median(with_event), median(full));
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let event = micros(with_event) - micros(bare);
    println!("backend: {}", if url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" });
    println!("rounds: {rounds}");
    println!("session (no event):     {:8.1} us", micros(bare));
    println!("session + audit event:  {:8.1} us", micros(with_event));
    println!("start_session (login):  {:8.1} us", micros(full));
    println!("the event's INSERT:     {event:8.1} us = {:.1}% of start_session", 100.0 * event / micros(full));
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
