//! Ruby regexp syntax read as Ruby reads it: the parts whose meaning differs in the `regex`
//! crate are rewritten (`[[:lower:]]` Unicode-aware, `\d` ASCII-only, `(?m)` as `(?s)`).

// ---------------------------------------------------------------------------------------
// Ruby regexp syntax
// ---------------------------------------------------------------------------------------

/// Rewrites the parts of a Ruby regexp whose meaning differs in the `regex` crate.
///
/// The `regex` crate reads `[[:lower:]]` as ASCII-only and `\d` as Unicode, Ruby the other
/// way round, and Ruby's `(?m)` is the crate's `(?s)`. Everything else is copied as is.
pub(super) fn translate_ruby_regexp(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 32);
    // Nesting depth of bracket expressions: POSIX brackets only exist inside one.
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += copy_escape(&chars[i..], &mut out);
        } else if c == '['
            && depth > 0
            && let Some((len, class)) = posix_bracket(&chars[i..])
        {
            out.push_str(&class);
            i += len;
        } else if c == '[' {
            depth += 1;
            i += open_bracket(&chars[i..], &mut out);
        } else if c == ']' && depth > 0 {
            depth -= 1;
            out.push(']');
            i += 1;
        } else if c == '(' && depth == 0 {
            i += copy_group_open(&chars[i..], &mut out);
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Copies an escape sequence starting at `chars[0] == '\\'`, rewriting Ruby's ASCII-only
/// shorthand classes. Returns how many characters were consumed.
pub(super) fn copy_escape(chars: &[char], out: &mut String) -> usize {
    let Some(&next) = chars.get(1) else {
        out.push('\\');
        return 1;
    };
    match perl_class(next) {
        Some(class) => out.push_str(class),
        None => {
            out.push('\\');
            out.push(next);
        }
    }
    2
}

/// Copies the opening of a bracket expression. A `^` and then a `]` right after `[` are part
/// of the opening (the `]` is a literal there), so they must not change the depth.
pub(super) fn open_bracket(chars: &[char], out: &mut String) -> usize {
    out.push('[');
    let mut len = 1;
    if chars.get(len) == Some(&'^') {
        out.push('^');
        len += 1;
    }
    if chars.get(len) == Some(&']') {
        out.push(']');
        len += 1;
    }
    len
}

/// Copies `(`, translating Ruby inline options `(?imx-imx)` / `(?imx-imx:`: Ruby's `m` is
/// "dot matches newline", which the `regex` crate calls `s`.
pub(super) fn copy_group_open(chars: &[char], out: &mut String) -> usize {
    out.push('(');
    if chars.get(1) != Some(&'?') {
        return 1;
    }
    let flags_len = chars[2..]
        .iter()
        .take_while(|c| matches!(c, 'i' | 'm' | 'x' | '-'))
        .count();
    let closes = matches!(chars.get(2 + flags_len), Some(')' | ':'));
    if flags_len == 0 || !closes {
        return 1;
    }
    out.push('?');
    out.extend(
        chars[2..2 + flags_len]
            .iter()
            .map(|&c| if c == 'm' { 's' } else { c }),
    );
    2 + flags_len
}

/// Ruby's ASCII-only shorthand classes, spelled out for the `regex` crate (whose own are
/// Unicode). Nested brackets work both inside and outside a bracket expression.
pub(super) fn perl_class(letter: char) -> Option<&'static str> {
    Some(match letter {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        's' => r"[\t\n\x0B\x0C\r\x20]",
        'S' => r"[^\t\n\x0B\x0C\r\x20]",
        'h' => "[0-9A-Fa-f]",
        'H' => "[^0-9A-Fa-f]",
        _ => return None,
    })
}

/// Parses `[:name:]` or `[:^name:]` at the start of `chars` and returns its length and the
/// equivalent nested class, with Onigmo's Unicode definitions (as Ruby 3 applies them).
pub(super) fn posix_bracket(chars: &[char]) -> Option<(usize, String)> {
    if chars.get(1) != Some(&':') {
        return None;
    }
    let negated = chars.get(2) == Some(&'^');
    let name_start = if negated { 3 } else { 2 };
    let name_len = chars[name_start..]
        .iter()
        .take_while(|c| c.is_ascii_lowercase())
        .count();
    let name_end = name_start + name_len;
    if chars.get(name_end) != Some(&':') || chars.get(name_end + 1) != Some(&']') {
        return None;
    }
    let name: String = chars[name_start..name_end].iter().collect();
    let (items, complemented) = posix_items(&name)?;
    // `complemented` classes are defined as "everything except items".
    let open = if negated != complemented { "[^" } else { "[" };
    Some((name_end + 2, format!("{open}{items}]")))
}

/// The members of a POSIX bracket class, and whether the class is their complement.
pub(super) fn posix_items(name: &str) -> Option<(&'static str, bool)> {
    // Excluded from [[:graph:]]: white space, controls and unassigned points (Ruby also
    // excludes surrogates, which a Rust string cannot hold).
    const NOT_GRAPH: &str = r"\p{White_Space}\p{Cc}\p{Cn}";
    // [[:print:]] is [[:graph:]] plus space separators.
    const NOT_PRINT: &str = r"[\p{White_Space}--\p{Zs}]\p{Cc}\p{Cn}";
    Some(match name {
        "alnum" => (r"\p{Alphabetic}\p{Nd}", false),
        "alpha" => (r"\p{Alphabetic}", false),
        "ascii" => (r"\x00-\x7F", false),
        "blank" => (r"\p{Zs}\t", false),
        "cntrl" => (r"\p{Cc}", false),
        "digit" => (r"\p{Nd}", false),
        "graph" => (NOT_GRAPH, true),
        "lower" => (r"\p{Lowercase}", false),
        "print" => (NOT_PRINT, true),
        "punct" => (r"\p{P}\x24\x2B\x3C\x3D\x3E\x5E\x60\x7C\x7E", false),
        "space" => (r"\p{White_Space}", false),
        "upper" => (r"\p{Uppercase}", false),
        "xdigit" => ("0-9A-Fa-f", false),
        "word" => (r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}", false),
        _ => return None,
    })
}
