//! A small glob matcher for selecting files under a directory: `*` matches any run of
//! characters within one path component, `?` one character, and a component that is exactly
//! `**` matches zero or more whole components. Patterns are matched against the path relative
//! to the searched directory, components joined by `/`. No character classes, no escapes.

use std::fmt;

/// One `/`-separated piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: zero or more components.
    AnyDirs,
    /// A component pattern with `*` and `?` wildcards.
    Component(Vec<char>),
}

/// A compiled glob pattern such as `**/*.txt` or `books/*.md`.
///
/// ```
/// use blt_data::GlobPattern;
/// let g = GlobPattern::new("**/*.txt").unwrap();
/// assert!(g.matches("a.txt"));
/// assert!(g.matches("x/y/a.txt"));
/// assert!(!g.matches("a.md"));
/// let flat = GlobPattern::new("*.txt").unwrap();
/// assert!(!flat.matches("x/a.txt"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobPattern {
    text: String,
    segments: Vec<Segment>,
}

impl GlobPattern {
    /// The pattern a bare directory source uses: every `.txt` file at any depth.
    pub const DEFAULT: &'static str = "**/*.txt";

    /// Compiles `pattern`; `None` if it is empty, absolute, or has an empty component.
    pub fn new(pattern: &str) -> Option<Self> {
        if pattern.is_empty() || pattern.starts_with('/') {
            return None;
        }
        let segments = pattern
            .split('/')
            .map(|part| match part {
                "" => None,
                "**" => Some(Segment::AnyDirs),
                _ => Some(Segment::Component(part.chars().collect())),
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            text: pattern.to_string(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a relative path (components joined by `/`) matches.
    pub fn matches(&self, relative: &str) -> bool {
        let parts: Vec<Vec<char>> = relative.split('/').map(|p| p.chars().collect()).collect();
        match_segments(&self.segments, &parts)
    }

    /// Whether a string contains glob wildcards (`*` or `?`).
    pub fn has_wildcards(text: &str) -> bool {
        text.contains(['*', '?'])
    }
}

impl fmt::Display for GlobPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn match_segments(segments: &[Segment], parts: &[Vec<char>]) -> bool {
    match segments.split_first() {
        None => parts.is_empty(),
        Some((Segment::AnyDirs, rest)) => {
            (0..=parts.len()).any(|skip| match_segments(rest, &parts[skip..]))
        }
        Some((Segment::Component(pattern), rest)) => match parts.split_first() {
            Some((part, tail)) => match_component(pattern, part) && match_segments(rest, tail),
            None => false,
        },
    }
}

/// Wildcard match of one component: `*` any run, `?` one character (greedy with backtracking
/// to the last `*`).
fn match_component(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_and_double_star() {
        let g = GlobPattern::new("books/**/ch?.md").unwrap();
        assert!(g.matches("books/ch1.md"));
        assert!(g.matches("books/a/b/ch2.md"));
        assert!(!g.matches("books/a/ch10.md"));
        assert!(!g.matches("other/ch1.md"));
        let g = GlobPattern::new("*a*b*").unwrap();
        assert!(g.matches("xaybz"));
        assert!(g.matches("ab"));
        assert!(!g.matches("ba"));
        assert!(GlobPattern::new("").is_none());
        assert!(GlobPattern::new("/abs/*.txt").is_none());
        assert!(GlobPattern::new("a//b").is_none());
        assert_eq!(
            GlobPattern::new("**/*.txt").unwrap().to_string(),
            "**/*.txt"
        );
    }
}
