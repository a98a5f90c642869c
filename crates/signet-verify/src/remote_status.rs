//! Status lists over HTTP(S) (feature `remote`): one thread fetches the
//! lists tokens name (`If-None-Match`, `ttl`, backoff), a second listens to
//! signet's event stream and asks the first to refetch a list as soon as a
//! newer version is announced. Neither ever runs on a caller's thread.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::Agent;

use crate::status::StatusLists;
use crate::verifier::Verifier;

/// Largest list token read (a compressed list for millions of sessions is
/// tens of kilobytes).
const MAX_LIST_TOKEN_BYTES: u64 = 4 * 1024 * 1024;

/// signet sends a keepalive at least every 15 s: a stream silent for longer
/// than this is dead, and is reconnected.
const EVENT_READ_TIMEOUT: Duration = Duration::from_secs(45);

/// Longest event line read.
const MAX_EVENT_LINE: usize = 64 * 1024;

/// Starts the fetcher thread; it starts the event-stream thread once the
/// first list is tracked (a service that never sees a `status` claim never
/// connects).
pub(crate) fn spawn(lists: Arc<StatusLists>, verifier: Weak<Verifier>, timeout: Duration) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("signet-verify-status".to_owned())
        .spawn(move || run_fetcher(&lists, &verifier, &crate::remote::agent(timeout)))
        .map(drop)
}

fn run_fetcher(lists: &Arc<StatusLists>, verifier: &Weak<Verifier>, agent: &Agent) {
    let mut events_started = false;
    loop {
        let (due, next) = lists.take_due(Instant::now());
        if due.is_empty() {
            let mut wake = lists.lock_wake();
            loop {
                if wake.shutdown || verifier.strong_count() == 0 {
                    return;
                }
                if wake.kicked {
                    wake.kicked = false;
                    break;
                }
                let now = Instant::now();
                let wait = match next {
                    Some(at) if at <= now => break,
                    Some(at) => at - now,
                    // Nothing tracked: wake now and then to notice a dropped verifier.
                    None => Duration::from_secs(5),
                };
                wake = lists
                    .changed
                    .wait_timeout(wake, wait)
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            }
            continue;
        }
        for (uri, etag) in due {
            let Some(verifier) = verifier.upgrade() else { return };
            fetch_one(lists, &verifier, agent, &uri, etag.as_deref());
        }
        if !events_started && lists.policy.events && !lists.is_empty() {
            events_started = true;
            let (lists, verifier) = (lists.clone(), verifier.clone());
            let started = std::thread::Builder::new()
                .name("signet-verify-status-events".to_owned())
                .spawn(move || run_events(&lists, &verifier));
            if let Err(err) = started {
                log::error!("cannot start the status event thread ({err}); lists are refreshed by ttl only");
            }
        }
    }
}

fn fetch_one(lists: &StatusLists, verifier: &Verifier, agent: &Agent, uri: &str, etag: Option<&str>) {
    lists.count_fetch();
    let url = lists.fetch_url(uri);
    let mut request = agent.get(&url).header("accept", "application/statuslist+jwt");
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    let mut response = match request.call() {
        Ok(response) => response,
        Err(err) => return lists.failed(uri, &err.to_string()),
    };
    let status = response.status().as_u16();
    if status == 304 && etag.is_some() {
        return lists.not_modified(uri);
    }
    if status != 200 {
        return lists.failed(uri, &format!("HTTP {status}"));
    }
    let new_etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = match response.body_mut().with_config().limit(MAX_LIST_TOKEN_BYTES).read_to_string() {
        Ok(body) => body,
        Err(err) => return lists.failed(uri, &err.to_string()),
    };
    match verifier.decode_status_list(body.trim(), uri) {
        Ok(list) => lists.loaded(uri, list, new_etag),
        Err(err) => lists.failed(uri, &err.to_string()),
    }
}

#[derive(Deserialize)]
struct StatusEvent {
    uri: String,
    version: u64,
}

/// Connects to the event stream, reconnecting with backoff (1 s doubling to
/// 60 s, reset by a connection that delivered something).
fn run_events(lists: &Arc<StatusLists>, verifier: &Weak<Verifier>) {
    let url = lists.events_url();
    let agent: Agent = Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_recv_response(Some(Duration::from_secs(10)))
        .timeout_per_read(Some(EVENT_READ_TIMEOUT))
        .http_status_as_error(false)
        .user_agent(concat!("signet-verify/", env!("CARGO_PKG_VERSION")))
        .tls_config(crate::remote::tls_config())
        .build()
        .new_agent();
    let mut backoff = Duration::from_secs(1);
    loop {
        if lists.is_shutdown() || verifier.strong_count() == 0 {
            return;
        }
        match listen(lists, verifier, &agent, &url) {
            Ok(true) => backoff = Duration::from_secs(1),
            Ok(false) => {}
            Err(err) => log::warn!("status event stream {url}: {err}; reconnecting in {backoff:?}"),
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

/// One connection; whether it delivered any event or keepalive.
fn listen(lists: &StatusLists, verifier: &Weak<Verifier>, agent: &Agent, url: &str) -> Result<bool, String> {
    let response = agent.get(url).header("accept", "text/event-stream").call().map_err(|err| err.to_string())?;
    if response.status().as_u16() != 200 {
        return Err(format!("HTTP {}", response.status()));
    }
    let mut reader = BufReader::new(response.into_body().into_reader());
    let (mut event, mut data) = (String::new(), String::new());
    let mut delivered = false;
    let mut line = Vec::new();
    loop {
        if lists.is_shutdown() || verifier.strong_count() == 0 {
            return Ok(delivered);
        }
        line.clear();
        let read = (&mut reader).take(MAX_EVENT_LINE as u64).read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
        if read == 0 {
            return Ok(delivered); // the server closed the stream
        }
        if line.last() != Some(&b'\n') {
            return Err("event line too long".to_owned());
        }
        delivered = true;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        // Server-sent events (HTML §9.2.6): a blank line dispatches.
        if text.is_empty() {
            if event == "status" {
                match serde_json::from_str::<StatusEvent>(&data) {
                    Ok(ev) => lists.announce(&ev.uri, ev.version),
                    Err(err) => log::warn!("status event stream {url}: malformed status event: {err}"),
                }
            }
            event.clear();
            data.clear();
        } else if let Some(value) = field(text, "event") {
            event = value.to_owned();
        } else if let Some(value) = field(text, "data") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value);
            if data.len() > MAX_EVENT_LINE {
                return Err("event data too long".to_owned());
            }
        }
        // Comments (`: keepalive`) and other fields are ignored.
    }
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}
