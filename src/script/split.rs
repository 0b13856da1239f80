//! Splitting a script's command line into words, the way keepalived does it
//! (`alloc_strvec_quoted_escaped()` in keepalived's `lib/parser.c`).
//!
//! - Words are separated by unquoted white space (space, tab, CR, LF, VT, FF).
//! - `"..."` and `'...'` quote: the quotes are removed and the white space
//!   inside is kept. A word may mix quoted and bare parts (`x"y z"w` is the one
//!   word `xy zw`).
//! - A backslash escapes the next character **everywhere, inside single
//!   quotes too** (unlike a POSIX shell): `\a \b \E \f \n \r \t \v`, `\xHH..`
//!   (hex), `\NNN` (up to three octal digits) and `\cC` (control-C) are the C
//!   escapes keepalived supports; any other `\C` is just `C` (so `\\`, `\"`,
//!   `\'` and `\ ` give `\`, `"`, `'` and a space).
//! - An unterminated quote or a trailing lone backslash is an error (keepalived
//!   then ignores the script).
//!
//! The words are bytes (an escape can make any byte), hence `OsString`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Splits `command` into words; `Err` says what is wrong with it.
pub fn split_command(command: &str) -> Result<Vec<OsString>, String> {
    let s = command.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let mut word: Vec<u8> = Vec::new();
        let mut quote: Option<u8> = None;
        while i < s.len() {
            let b = s[i];
            match quote {
                None if is_space(b) => break,
                None if b == b'"' || b == b'\'' => {
                    quote = Some(b);
                    i += 1;
                }
                Some(q) if b == q => {
                    quote = None;
                    i += 1;
                }
                _ if b == b'\\' => {
                    let (byte, used) = escape(&s[i + 1..]).ok_or_else(|| {
                        format!("the command ends with a lone backslash: {command}")
                    })?;
                    word.push(byte);
                    i += 1 + used;
                }
                _ => {
                    word.push(b);
                    i += 1;
                }
            }
        }
        if let Some(q) = quote {
            return Err(format!(
                "missing closing {} quote in the command: {command}",
                q as char
            ));
        }
        words.push(OsString::from_vec(word));
    }
    Ok(words)
}

/// The byte an escape after a backslash stands for, and how many bytes of
/// `rest` it used; None when there is nothing after the backslash.
fn escape(rest: &[u8]) -> Option<(u8, usize)> {
    let first = *rest.first()?;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let oct = |b: u8| matches!(b, b'0'..=b'7').then(|| b - b'0');
    if first == b'x'
        && let Some(h) = rest.get(1).and_then(|b| hex(*b))
    {
        // Like keepalived, every following hex digit shifts in (the byte wraps).
        let mut v = h;
        let mut n = 2;
        while let Some(h) = rest.get(n).and_then(|b| hex(*b)) {
            v = (v << 4) | h;
            n += 1;
        }
        return Some((v, n));
    }
    if first == b'c'
        && let Some(c) = rest.get(1)
    {
        return Some((c & 0x1f, 2));
    }
    if let Some(d) = oct(first) {
        let mut v = d;
        let mut n = 1;
        while n < 3 {
            match rest.get(n).and_then(|b| oct(*b)) {
                Some(d) => {
                    v = v.wrapping_shl(3).wrapping_add(d);
                    n += 1;
                }
                None => break,
            }
        }
        return Some((v, n));
    }
    let v = match first {
        b'a' => 0x07,
        b'b' => 0x08,
        b'E' => 0x1b,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        other => other,
    };
    Some((v, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_command(s)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn keepalived_examples() {
        // The man page's examples (keepalived.conf(5), "Quoted strings").
        assert_eq!(words(r#"abcd" efg h jkl "mnop"#), ["abcd efg h jkl mnop"]);
        assert_eq!(
            words(r#"abcd "efg h jkl" mnop"#),
            ["abcd", "efg h jkl", "mnop"]
        );
        // What keepalived 2.2.7 passed to a script (checked by running it).
        assert_eq!(
            words(r#"/x.sh 'a b' "c d" e\tf 'g\h' x"y z"w"#),
            ["/x.sh", "a b", "c d", "e\tf", "gh", "xy zw"]
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            words(r"a\ b \\ \x41\x42 \101 \cA"),
            ["a b", "\\", "AB", "A", "\u{1}"]
        );
        assert_eq!(words(r"\q \x \c"), ["q", "x", "c"]);
        assert_eq!(words(r#""it\"s" 'it\'s'"#), ["it\"s", "it's"]);
        assert_eq!(words("  "), Vec::<String>::new());
        assert_eq!(words(r#"'' """#), ["", ""]);
    }

    #[test]
    fn errors() {
        assert!(
            split_command("a 'b")
                .unwrap_err()
                .contains("missing closing ' quote")
        );
        assert!(
            split_command("a \"b")
                .unwrap_err()
                .contains("missing closing \" quote")
        );
        assert!(
            split_command("a b\\")
                .unwrap_err()
                .contains("lone backslash")
        );
    }
}
