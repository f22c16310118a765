//! Logging setup. Secrets never reach a log line: no request body or header is logged.
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in files and collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Characters of a client-supplied value that reach a log line or an echoed message.
pub const CLIP_CHARS: usize = 200;

/// A client-supplied value cut to `CLIP_CHARS` characters. Log it with `?` (Debug), never `%`:
/// Debug quotes and escapes newlines and control characters, so a value cannot start a line
/// of its own in the human format (the JSON format escapes anyway).
pub fn clip(s: &str) -> std::borrow::Cow<'_, str> {
    clip_to(s, CLIP_CHARS)
}

/// `clip` with another length, for messages that may quote client values (database errors).
pub fn clip_to(s: &str, chars: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(chars) {
        None => std::borrow::Cow::Borrowed(s),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &s[..end])),
    }
}
