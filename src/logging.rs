//! Logging set-up: env_logger (`RUST_LOG`, default `info`) with the line
//! format of `log.format`: "text" (env_logger's own) or "json", one JSON
//! object per line with the text line's fields (`time`, `level`, `target`,
//! `message`) for log shippers. The request log line (peer, method, path,
//! status, size, time) is the `message` of target `actix_web::middleware::logger`.
//! Nothing logs passwords or tokens, in either format.

use std::io::Write;
use std::path::Path;

use crate::config::{LogFormat, Settings};

/// The format the configuration asks for; text when the configuration
/// cannot be read (the command then reports that error itself).
pub fn configured_format(config_file: Option<&Path>) -> LogFormat {
    Settings::load(config_file).map_or(LogFormat::Text, |settings| settings.log.format)
}

pub fn init(format: LogFormat) {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let line = json_line(chrono::Utc::now(), record.level(), record.target(), &record.args().to_string());
            writeln!(buf, "{line}")
        });
    }
    builder.init();
}

/// One log record as one line of JSON (serde_json escapes newlines and quotes).
pub fn json_line(time: chrono::DateTime<chrono::Utc>, level: log::Level, target: &str, message: &str) -> String {
    serde_json::json!({
        "time": time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "level": level.as_str(),
        "target": target,
        "message": message,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_is_one_line_of_json_with_the_text_fields() {
        let time = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let line = json_line(time, log::Level::Warn, "signet::x", "two\\nlines \"quoted\"\nhere");
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(value["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["target"], "signet::x");
        assert_eq!(value["message"], "two\\nlines \"quoted\"\nhere");
    }
}
