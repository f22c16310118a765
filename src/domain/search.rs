//! The `search` of the REST list, as Django REST framework's SearchFilter reads it: the value
//! is split into terms (Django's `smart_split`: spaces separate, quoted phrases stay whole,
//! unquoted tokens split again on commas) and every term must match. Matching folds case for
//! ASCII letters only, the same on SQLite (whose `lower()` knows no other letters) and on
//! PostgreSQL (whose `lower()` depends on the database's locale), so both databases give the
//! same rows for the same query.

/// ASCII case folding, the rule both databases apply to the searched columns.
pub fn fold(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Python's `str.isspace()`, which the regular expression's `\s` follows.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn is_quote(c: char) -> bool {
    c == '"' || c == '\''
}

/// The end (exclusive) of the quoted string opening at `start`, if it is closed.
fn quoted_end(chars: &[char], start: usize) -> Option<usize> {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            c if c == quote => return Some(i + 1),
            // `\\.`: a backslash escapes any character but a line break.
            '\\' if chars.get(i + 1).is_some_and(|n| *n != '\n') => i += 2,
            '\\' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Django's `smart_split`: the end of the token starting at `start` (not a space).
fn token_end(chars: &[char], start: usize) -> usize {
    let plain = |mut i: usize| {
        while i < chars.len() && !is_space(chars[i]) && !is_quote(chars[i]) {
            i += 1;
        }
        i
    };
    // Plain characters around at least one closed quoted string …
    let mut end = None;
    let mut i = plain(start);
    while i < chars.len() && is_quote(chars[i]) {
        let Some(after) = quoted_end(chars, i) else {
            break;
        };
        i = plain(after);
        end = Some(i);
    }
    // … or else any run of non-space characters.
    end.unwrap_or_else(|| {
        let mut i = start;
        while i < chars.len() && !is_space(chars[i]) {
            i += 1;
        }
        i
    })
}

/// DRF's `search_smart_split`: the terms of a search value.
pub fn terms(value: &str) -> Vec<String> {
    let chars: Vec<char> = value.chars().collect();
    let mut terms = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if is_space(chars[i]) {
            i += 1;
            continue;
        }
        let end = token_end(&chars, i);
        let token: String = chars[i..end].iter().collect();
        i = end;
        let token = token.trim_matches(',');
        let mut cs = token.chars();
        match (cs.next(), cs.next_back()) {
            (Some(first), Some(last)) if is_quote(first) && first == last => {
                // A quoted phrase, kept whole and unescaped.
                let inner = &token[1..token.len() - 1];
                let escaped_quote = format!("\\{first}");
                terms.push(
                    inner
                        .replace(&escaped_quote, &first.to_string())
                        .replace("\\\\", "\\"),
                );
            }
            // A lone quote is a literal of its own: the empty term.
            (Some(first), None) if is_quote(first) => terms.push(String::new()),
            _ => terms.extend(
                token
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(|t| t.trim().to_owned()),
            ),
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_spaces_and_commas() {
        assert_eq!(terms("a b,c  ,d,"), ["a", "b", "c", "d"]);
        assert_eq!(terms("  "), Vec::<String>::new());
        assert_eq!(terms(",,"), Vec::<String>::new());
    }

    #[test]
    fn quoted_phrases_stay_whole() {
        assert_eq!(terms(r#""a b" c"#), ["a b", "c"]);
        assert_eq!(terms(r#"'x, y' z"#), ["x, y", "z"]);
        // A phrase followed by more text is no phrase: it splits on commas, quotes kept.
        assert_eq!(terms(r#"'x, y',z"#), ["'x", "y'", "z"]);
        assert_eq!(terms(r#""say \"hi\"""#), [r#"say "hi""#]);
        // Quotes inside a token keep it whole, quotes and all.
        assert_eq!(terms(r#"a"b c"d"#), [r#"a"b c"d"#]);
        // An unclosed quote is an ordinary character.
        assert_eq!(terms(r#""a b"#), [r#""a"#, "b"]);
    }

    #[test]
    fn folds_ascii_only() {
        assert_eq!(fold("ÄBC Straße"), "Äbc straße");
    }
}
