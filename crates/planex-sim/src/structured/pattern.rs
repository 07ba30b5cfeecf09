//! `pattern`: a small regular-expression reader that *generates* a string matching the pattern.
//!
//! It covers what schemas use in practice: literals and escapes, `.`, `\d \w \s` and their
//! negations, bracket classes with ranges and `^`, groups (plain, `(?:…)`, named), alternation and
//! the quantifiers `? * + {n} {n,} {n,m}` (lazy forms too); `^` and `$` are read as zero-width.
//!
//! Key decision: anything else (look-around, back-references, `\b`, `\p{…}`, inline flags) is
//! refused with [`Unsupported`] instead of guessed, so the caller either rejects the schema (strict
//! mode) or drops the pattern (lenient mode), and a strict answer never claims a match it lacks.
//! A JSON Schema `pattern` is unanchored, so a full match of the pattern always satisfies it.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Extra repetitions drawn for an open-ended quantifier (`*`, `+`, `{n,}`).
const OPEN_EXTRA: u32 = 3;
/// The largest repetition count accepted in `{n,m}`.
const MAX_REPEAT: u32 = 256;
/// Characters drawn for `.` and negated classes (printable ASCII, space included).
const PRINTABLE: std::ops::RangeInclusive<u8> = b' '..=b'~';

/// The pattern uses a construct the generator cannot honour.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// A parsed pattern, ready to generate matches.
#[derive(Clone, Debug)]
pub struct Pattern(Node);

#[derive(Clone, Debug)]
enum Node {
    Literal(char),
    Class(Class),
    Concat(Vec<Node>),
    Alternation(Vec<Node>),
    Repeat(Box<Node>, u32, u32),
}

#[derive(Clone, Debug)]
struct Class {
    ranges: Vec<(char, char)>,
    negated: bool,
}

impl Class {
    fn of(ranges: &[(char, char)], negated: bool) -> Class {
        Class {
            ranges: ranges.to_vec(),
            negated,
        }
    }

    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != self.negated
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> char {
        if self.negated {
            let allowed: Vec<char> = PRINTABLE
                .map(char::from)
                .filter(|c| self.contains(*c))
                .collect();
            return allowed
                .get(rng.random_range(0..allowed.len().max(1)))
                .copied()
                .unwrap_or('~');
        }
        let Some(&(lo, hi)) = self
            .ranges
            .get(rng.random_range(0..self.ranges.len().max(1)))
        else {
            return 'a';
        };
        let span = u32::from(hi).saturating_sub(u32::from(lo));
        char::from_u32(u32::from(lo) + rng.random_range(0..=span)).unwrap_or(lo)
    }
}

const DIGIT: &[(char, char)] = &[('0', '9')];
const WORD: &[(char, char)] = &[('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
const SPACE: &[(char, char)] = &[(' ', ' '), ('\t', '\r')];
/// What `.` draws from: letters and digits, so a match stays readable.
const DOT: &[(char, char)] = &[('a', 'z'), ('0', '9')];

impl Pattern {
    /// Parses `source`, or says which construct is not supported.
    pub fn parse(source: &str) -> Result<Pattern, Unsupported> {
        let mut parser = Parser {
            chars: source.chars().collect(),
            at: 0,
        };
        let node = parser.alternation()?;
        if let Some(c) = parser.peek() {
            return Err(Unsupported(format!(
                "unbalanced `{c}` at character {}",
                parser.at + 1
            )));
        }
        Ok(Pattern(node))
    }

    /// A string matching the pattern.
    pub fn generate(&self, rng: &mut ChaCha8Rng) -> String {
        let mut out = String::new();
        emit(&self.0, rng, &mut out);
        out
    }
}

fn emit(node: &Node, rng: &mut ChaCha8Rng, out: &mut String) {
    match node {
        Node::Literal(c) => out.push(*c),
        Node::Class(class) => out.push(class.draw(rng)),
        Node::Concat(parts) => parts.iter().for_each(|p| emit(p, rng, out)),
        Node::Alternation(branches) => {
            if let Some(branch) = branches.get(rng.random_range(0..branches.len().max(1))) {
                emit(branch, rng, out);
            }
        }
        Node::Repeat(inner, min, max) => {
            for _ in 0..rng.random_range(*min..=*max) {
                emit(inner, rng, out);
            }
        }
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.at += usize::from(c.is_some());
        c
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        self.at += usize::from(hit);
        hit
    }

    fn alternation(&mut self) -> Result<Node, Unsupported> {
        let mut branches = vec![self.concat()?];
        while self.eat('|') {
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 {
            branches.remove(0)
        } else {
            Node::Alternation(branches)
        })
    }

    fn concat(&mut self) -> Result<Node, Unsupported> {
        let mut parts = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            self.at += 1;
            let atom = match c {
                '^' | '$' => continue,
                '(' => self.group()?,
                '[' => Node::Class(self.class()?),
                '.' => Node::Class(Class::of(DOT, false)),
                '\\' => self.escape()?,
                '*' | '+' | '?' => {
                    return Err(Unsupported(format!(
                        "quantifier `{c}` with nothing to repeat"
                    )));
                }
                other => Node::Literal(other),
            };
            parts.push(self.quantified(atom)?);
        }
        Ok(Node::Concat(parts))
    }

    fn group(&mut self) -> Result<Node, Unsupported> {
        if self.eat('?') {
            match self.next() {
                Some(':') => {}
                Some('<') if !matches!(self.peek(), Some('=' | '!')) => self.skip_name()?,
                Some('P') if self.eat('<') => self.skip_name()?,
                other => {
                    let shown = other.map_or(String::new(), String::from);
                    return Err(Unsupported(format!(
                        "group `(?{shown}` (look-around and inline flags are not supported)"
                    )));
                }
            }
        }
        let inner = self.alternation()?;
        if !self.eat(')') {
            return Err(Unsupported("unclosed `(`".to_owned()));
        }
        Ok(inner)
    }

    fn skip_name(&mut self) -> Result<(), Unsupported> {
        while let Some(c) = self.next() {
            if c == '>' {
                return Ok(());
            }
        }
        Err(Unsupported("unclosed group name".to_owned()))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        let digits: String = self.chars.get(start..self.at)?.iter().collect();
        digits.parse().ok()
    }

    /// `{n}`, `{n,}` or `{n,m}` after an atom; `None` (and no input used) when `{` is a literal.
    fn braces(&mut self) -> Option<(u32, Option<u32>)> {
        let start = self.at;
        let parsed = (|| {
            let min = self.number()?;
            let max = if self.eat(',') {
                self.number().or(Some(u32::MAX))
            } else {
                Some(min)
            };
            self.eat('}')
                .then_some((min, max.filter(|m| *m != u32::MAX)))
        })();
        if parsed.is_none() {
            self.at = start;
        }
        parsed
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, Unsupported> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                self.at += 1;
                match self.braces() {
                    Some(bounds) => {
                        self.at -= 1;
                        bounds
                    }
                    None => {
                        self.at -= 1;
                        return Ok(atom);
                    }
                }
            }
            _ => return Ok(atom),
        };
        self.at += 1;
        if self.eat('+') {
            return Err(Unsupported(
                "possessive quantifiers are not supported".to_owned(),
            ));
        }
        self.eat('?');
        let max = max.unwrap_or(min.saturating_add(OPEN_EXTRA));
        if min > max || max > MAX_REPEAT {
            return Err(Unsupported(format!(
                "repetition {{{min},{max}}} (at most {MAX_REPEAT}, minimum not above maximum)"
            )));
        }
        Ok(Node::Repeat(Box::new(atom), min, max))
    }

    fn escape(&mut self) -> Result<Node, Unsupported> {
        let Some(c) = self.next() else {
            return Err(Unsupported("trailing `\\`".to_owned()));
        };
        Ok(match self.class_escape(c)? {
            Some(class) => Node::Class(class),
            None => Node::Literal(self.literal_escape(c)?),
        })
    }

    fn class_escape(&mut self, c: char) -> Result<Option<Class>, Unsupported> {
        Ok(Some(match c {
            'd' => Class::of(DIGIT, false),
            'D' => Class::of(DIGIT, true),
            'w' => Class::of(WORD, false),
            'W' => Class::of(WORD, true),
            's' => Class::of(SPACE, false),
            'S' => Class::of(SPACE, true),
            _ => return Ok(None),
        }))
    }

    fn literal_escape(&mut self, c: char) -> Result<char, Unsupported> {
        match c {
            't' => Ok('\t'),
            'n' => Ok('\n'),
            'r' => Ok('\r'),
            'f' => Ok('\u{c}'),
            'v' => Ok('\u{b}'),
            '0' => Ok('\0'),
            'u' => self.hex(4),
            'x' => self.hex(2),
            c if c.is_ascii_punctuation() || c == ' ' => Ok(c),
            other => Err(Unsupported(format!("escape `\\{other}`"))),
        }
    }

    fn hex(&mut self, digits: usize) -> Result<char, Unsupported> {
        let text: String = (0..digits).filter_map(|_| self.next()).collect();
        u32::from_str_radix(&text, 16)
            .ok()
            .filter(|_| text.len() == digits)
            .and_then(char::from_u32)
            .ok_or_else(|| Unsupported(format!("escape with {digits} hex digits `{text}`")))
    }

    fn class(&mut self) -> Result<Class, Unsupported> {
        let negated = self.eat('^');
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.next() else {
                return Err(Unsupported("unclosed `[`".to_owned()));
            };
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = match c {
                '\\' => {
                    let e = self
                        .next()
                        .ok_or_else(|| Unsupported("trailing `\\`".to_owned()))?;
                    match self.class_escape(e)? {
                        Some(class) if !class.negated => {
                            ranges.extend(class.ranges);
                            continue;
                        }
                        Some(_) => {
                            return Err(Unsupported(format!(
                                "negated escape `\\{e}` inside `[…]`"
                            )));
                        }
                        None => self.literal_escape(e)?,
                    }
                }
                '[' if self.peek() == Some(':') => {
                    return Err(Unsupported("POSIX classes `[:…:]`".to_owned()));
                }
                other => other,
            };
            let is_range = self.peek() == Some('-') && self.chars.get(self.at + 1) != Some(&']');
            if is_range {
                self.at += 1;
                let hi = match self.next() {
                    Some('\\') => {
                        let e = self
                            .next()
                            .ok_or_else(|| Unsupported("trailing `\\`".to_owned()))?;
                        self.literal_escape(e)?
                    }
                    Some(hi) => hi,
                    None => return Err(Unsupported("unclosed `[`".to_owned())),
                };
                if hi < lo {
                    return Err(Unsupported(format!("range `{lo}-{hi}` out of order")));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        let class = Class { ranges, negated };
        if !negated && class.ranges.is_empty()
            || negated && !PRINTABLE.map(char::from).any(|c| class.contains(c))
        {
            return Err(Unsupported(
                "a class no printable character matches".to_owned(),
            ));
        }
        Ok(class)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generates_common_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let phone = Pattern::parse(r"^\d{3}-\d{4}$").unwrap().generate(&mut rng);
            assert_eq!(phone.len(), 8, "{phone}");
            assert!(phone.chars().enumerate().all(|(i, c)| if i == 3 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }));
            let code = Pattern::parse("^(EUR|USD)-[A-F0-9]{2,4}$")
                .unwrap()
                .generate(&mut rng);
            assert!(
                code.starts_with("EUR-") || code.starts_with("USD-"),
                "{code}"
            );
            assert!((6..=8).contains(&code.len()), "{code}");
            let word = Pattern::parse("[^0-9 ]+x?").unwrap().generate(&mut rng);
            assert!(
                word.chars().all(|c| !c.is_ascii_digit() && c != ' '),
                "{word}"
            );
            assert!(!word.is_empty());
        }
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        for bad in [
            r"(?=a)b", r"(a)\1", r"\bword", r"\p{L}", "(?i)abc", "a{3,1}", "[z-a]", "(ab", "*a",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        assert!(Pattern::parse("a{,3}").is_ok(), "a literal brace");
    }
}
