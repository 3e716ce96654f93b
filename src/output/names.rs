//! The one place where a name from a backup becomes a name on disk or a download, so that
//! the CLI, the page and the file browser cannot disagree on what is safe.

use crate::error::{Error, Result};

/// A name safe to create in a folder, from raw bytes: no `/`, no NUL or other control
/// characters (each becomes `_`), never empty, `.` or `..`. Other bytes are kept as they are
/// (a non-UTF-8 name stays byte-exact on Linux); the page converts lossily on top.
pub fn safe_name(name: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = name.iter().map(|&b| if b == b'/' || b < 0x20 || b == 0x7f { b'_' } else { b }).collect();
    // Control characters beyond ASCII (U+0080–U+009F) in UTF-8 names.
    if let Ok(s) = std::str::from_utf8(&out) {
        if s.chars().any(|c| c.is_control()) {
            out = s.chars().map(|c| if c.is_control() { '_' } else { c }).collect::<String>().into_bytes();
        }
    }
    match out.as_slice() {
        b"" => b"_".to_vec(),
        b"." | b".." => [b"_".as_slice(), &out].concat(),
        _ => out,
    }
}

/// A name to save under, from the raw bytes: [`safe_name`], then lossy UTF-8 (browsers want
/// text), then what Windows and macOS refuse in names replaced too.
pub fn download_name(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(&safe_name(name)).into_owned();
    let s: String = s.chars().map(|c| if matches!(c, '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') { '_' } else { c }).collect();
    let s = s.trim_end_matches(['.', ' ']).to_string();
    if s.is_empty() || s == "." || s == ".." {
        "_".into()
    } else {
        s
    }
}

/// A stored name used as a path component of the CLI's output (`DIR/<qube>/<file>`): refused,
/// never rewritten, unless it is one plain component.
pub fn safe_component(name: &str) -> Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) || name.chars().any(|c| c.is_control()) {
        return Err(Error::unsafe_path(name, "a stored file name must be one plain component"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_are_one_component_and_keep_other_bytes() {
        assert_eq!(safe_name(b"a/b"), b"a_b");
        assert_eq!(safe_name(b".."), b"_..");
        assert_eq!(safe_name(b"."), b"_.");
        assert_eq!(safe_name(b""), b"_");
        assert_eq!(safe_name(b"line\nbreak\x7f"), b"line_break_");
        assert_eq!(safe_name(b"caf\xe9 \xff"), b"caf\xe9 \xff", "non-UTF-8 bytes are kept");
        assert_eq!(safe_name("a\u{85}b".as_bytes()), b"a_b");
    }

    #[test]
    fn download_names_also_avoid_what_windows_and_macos_refuse() {
        assert_eq!(download_name(b"a:b*c?.txt"), "a_b_c_.txt");
        assert_eq!(download_name(b"trailing. "), "trailing");
        assert_eq!(download_name(b".."), "_", "trailing dots go, as Windows drops them");
        assert!(safe_component("..").is_err() && safe_component("a/b").is_err() && safe_component("ok.img").is_ok());
    }
}
