//! CSV with a header row, read by the `csv` crate (RFC 4180: `,`, `"`
//! quoting, `""` inside quotes, CRLF or LF; blank lines skipped).

use std::collections::HashSet;

use anyhow::{anyhow, bail};

use super::{parse_timestamp, GroupRef, ImportRow, ParsedRow, RowError};

/// Separates group names in the CSV `groups` column.
pub const CSV_GROUP_SEPARATOR: char = '|';

/// Columns by name, any order: `username` and `password` are required;
/// `email`, `is_active` (default true), `is_staff`, `is_superuser` (default
/// false), `groups` (`|`-separated names) and `date_joined` are optional;
/// other columns are ignored. Booleans: true/false, t/f, 1/0, yes/no.
pub fn parse_csv(text: &str) -> anyhow::Result<Vec<ParsedRow>> {
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = reader.records();
    let Some(header) = records.next() else {
        bail!("empty CSV file: expected a header row");
    };
    let header = header.map_err(|e| anyhow!("CSV header: {}", csv_error(&e)))?;
    let names: Vec<String> = header.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
    let column = |name: &str| names.iter().position(|n| n == name);
    let mut seen = HashSet::new();
    if let Some(dup) = names.iter().find(|n| !n.is_empty() && !seen.insert(n.as_str())) {
        bail!("CSV header names {dup:?} twice");
    }
    let (Some(username_col), Some(password_col)) = (column("username"), column("password")) else {
        bail!("CSV header must name at least username and password (got: {})", names.join(","));
    };
    let columns = CsvColumns {
        username: username_col,
        password: password_col,
        email: column("email"),
        is_active: column("is_active"),
        is_staff: column("is_staff"),
        is_superuser: column("is_superuser"),
        groups: column("groups"),
        date_joined: column("date_joined"),
        count: names.len(),
    };
    // Lines are counted here from each record's byte offset: a report must
    // name the line a record starts on, quoted line breaks included.
    let (mut counted_to, mut line) = (0, 1);
    let mut line_at = |byte: usize| {
        line += text.as_bytes()[counted_to.min(byte)..byte].iter().filter(|b| **b == b'\n').count();
        counted_to = counted_to.max(byte);
        line
    };
    let mut read: Vec<(usize, usize, Result<Vec<String>, String>)> = records
        .map(|record| {
            let (byte, fields) = match record {
                Ok(record) => {
                    (record.position().map_or(0, |p| p.byte()), Ok(record.iter().map(str::to_owned).collect()))
                }
                Err(err) => (err.position().map_or(0, |p| p.byte()), Err(csv_error(&err))),
            };
            // The reported offset may sit on the line break (or blank lines)
            // before the record: the record starts after them.
            let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(text.len());
            while matches!(text.as_bytes().get(start), Some(b'\r' | b'\n')) {
                start += 1;
            }
            (line_at(start), start, fields)
        })
        .collect();
    // The csv crate reads an unclosed quote to the end of the file without
    // complaint: the rows it swallowed must not pass unnoticed.
    if let Some((_, start, fields)) = read.last_mut() {
        let rest = text.get(*start..).unwrap_or("");
        if ends_inside_quotes(rest) {
            *fields = Err("unterminated quoted field (it runs to the end of the file)".to_owned());
        }
    }
    let rows = read
        .into_iter()
        .filter(|(_, _, fields)| !matches!(fields, Ok(fields) if fields.iter().all(|f| f.trim().is_empty())))
        .map(|(line, _, fields)| csv_row(format!("line {line}"), fields, &columns))
        .collect();
    Ok(rows)
}

/// The csv crate's error in words that never quote the data.
fn csv_error(err: &::csv::Error) -> String {
    match err.kind() {
        ::csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        _ => "unreadable CSV record".to_owned(),
    }
}

/// Whether `text`, read from the start of a record, ends inside a quoted
/// field: a quote opens a field only at its start and closes it inside one
/// (a doubled quote closes and at once reopens it).
fn ends_inside_quotes(text: &str) -> bool {
    let (mut quoted, mut at_field_start, mut just_closed) = (false, true, false);
    for c in text.chars() {
        if quoted {
            if c == '"' {
                (quoted, just_closed) = (false, true);
            }
            continue;
        }
        match c {
            '"' if at_field_start || just_closed => quoted = true,
            ',' | '\n' | '\r' => at_field_start = true,
            _ => at_field_start = false,
        }
        just_closed = false;
    }
    quoted
}

struct CsvColumns {
    username: usize,
    password: usize,
    email: Option<usize>,
    is_active: Option<usize>,
    is_staff: Option<usize>,
    is_superuser: Option<usize>,
    groups: Option<usize>,
    date_joined: Option<usize>,
    count: usize,
}

fn csv_row(source: String, record: Result<Vec<String>, String>, columns: &CsvColumns) -> ParsedRow {
    let fields = record.map_err(|message| RowError { source: source.clone(), username: None, message })?;
    if fields.len() != columns.count {
        let message = format!("{} fields where the header has {}", fields.len(), columns.count);
        return Err(RowError { source, username: None, message });
    }
    let username = fields[columns.username].trim().to_owned();
    let fail = |message: String| RowError { source: source.clone(), username: Some(username.clone()), message };
    let get = |col: Option<usize>| col.map(|c| fields[c].trim()).unwrap_or("");
    let flag = |field: &str, col: Option<usize>, default: bool| match get(col).to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "true" | "t" | "1" | "yes" | "y" => Ok(true),
        "false" | "f" | "0" | "no" | "n" => Ok(false),
        _ => Err(fail(format!("{field}: must be true or false"))),
    };
    let is_active = flag("is_active", columns.is_active, true)?;
    let is_staff = flag("is_staff", columns.is_staff, false)?;
    let is_superuser = flag("is_superuser", columns.is_superuser, false)?;
    let groups = get(columns.groups)
        .split(CSV_GROUP_SEPARATOR)
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| GroupRef::Name(g.to_owned()))
        .collect();
    let date_joined = match get(columns.date_joined) {
        "" => None,
        text => Some(parse_timestamp(text).ok_or_else(|| fail("date_joined: not a timestamp".into()))?),
    };
    Ok(ImportRow {
        username: username.clone(),
        email: get(columns.email).to_owned(),
        // Hashes have no surrounding spaces; a CSV editor may have added some.
        password: fields[columns.password].trim().to_owned(),
        is_active,
        is_staff,
        is_superuser,
        groups,
        date_joined,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Format};
    use super::*;

    const HASH: &str = "pbkdf2_sha256$1000$d0LbZu0yf6USg9fzJiasCZ$KZ7j2TXDRjBRNKwtT6QO9aohRBchbkwCqIpTSMsSCvE=";

    #[test]
    fn csv_quotes_defaults_and_bad_lines() {
        let text = format!(
            "\u{feff}Username,password,is_active,groups,extra\r\n\
             alice,{HASH},t,\"Support Team|billing\",x\r\n\
             \r\n\
             \"bo,b\",\"{HASH}\",,\"a \"\"quoted\"\" group\",\"multi\nline\"\n\
             carol,{HASH},maybe,,\n\
             dave,{HASH}\n\
             erin,\"{HASH}"
        );
        let rows = parse(&text, Format::Csv).expect("csv");
        assert_eq!(rows.len(), 5);
        let alice = rows[0].as_ref().expect("alice");
        assert_eq!(alice.source, "line 2");
        assert!(alice.is_active && !alice.is_staff && !alice.is_superuser);
        assert_eq!(alice.groups, vec![GroupRef::Name("Support Team".into()), GroupRef::Name("billing".into())]);
        let bob = rows[1].as_ref().expect("bob");
        assert_eq!((bob.username.as_str(), bob.source.as_str(), bob.is_active), ("bo,b", "line 4", true));
        assert_eq!(bob.groups, vec![GroupRef::Name("a \"quoted\" group".into())]);
        assert_eq!(rows[2].as_ref().expect_err("carol").message, "is_active: must be true or false");
        assert_eq!(rows[3].as_ref().expect_err("dave").message, "2 fields where the header has 5");
        assert_eq!(rows[3].as_ref().expect_err("dave").source, "line 7");
        assert!(rows[4].as_ref().expect_err("erin").message.contains("unterminated"));

        assert!(parse_csv("").is_err());
        assert!(parse_csv("username,email\nx,y\n").is_err(), "no password column");
        assert!(parse_csv("username,password,username\n").is_err());
    }
}
