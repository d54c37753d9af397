//! Tokenizer and recursive-descent parser for the supported FHIRPath subset.
//!
//! Precedence (high to low), as in FHIRPath: `.` and `[]`; `is` / `as`; `|`; `=` / `!=`; `and`.

use super::Expr;

/// Nesting limit: registry expressions are shallow; this only guards against stack overflow.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// `%name`.
    Env(String),
    Str(String),
    Int(usize),
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Pipe,
    Eq,
    Ne,
}

/// Parses `text`; unsupported syntax is an error naming what was not understood.
/// `is_choice` tells whether a name is that of a choice element (`value` for `value[x]`).
pub fn parse(text: &str, is_choice: &dyn Fn(&str) -> bool) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
        is_choice,
    };
    let expr = p.expr()?;
    match p.peek() {
        None => Ok(expr),
        Some(t) => Err(format!("unexpected {t:?} in {text:?}")),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '.' => Token::Dot,
            '(' => Token::LParen,
            ')' => Token::RParen,
            '[' => Token::LBracket,
            ']' => Token::RBracket,
            '|' => Token::Pipe,
            '=' => Token::Eq,
            '!' if chars.next_if(|&(_, c)| c == '=').is_some() => Token::Ne,
            '\'' => Token::Str(string_literal(&mut chars)?),
            '%' => Token::Env(identifier(text, &mut chars, i + 1)),
            c if c.is_ascii_digit() => {
                let digits = identifier(text, &mut chars, i);
                Token::Int(
                    digits
                        .parse()
                        .map_err(|_| format!("bad number {digits:?}"))?,
                )
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                Token::Ident(identifier(text, &mut chars, i))
            }
            c => return Err(format!("unsupported character {c:?} in {text:?}")),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// The identifier (or digit run) starting at byte `start`; consumes its remaining characters.
fn identifier(
    text: &str,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    start: usize,
) -> String {
    let mut end = text.len();
    while let Some(&(j, c)) = chars.peek() {
        if c.is_ascii_alphanumeric() || c == '_' {
            chars.next();
        } else {
            end = j;
            break;
        }
    }
    text[start..end].to_owned()
}

fn string_literal(chars: &mut impl Iterator<Item = (usize, char)>) -> Result<String, String> {
    let mut out = String::new();
    loop {
        match chars.next() {
            None => return Err("unterminated string literal".into()),
            Some((_, '\'')) => return Ok(out),
            Some((_, '\\')) => match chars.next() {
                Some((_, c @ ('\'' | '"' | '\\' | '/' | '`'))) => out.push(c),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                other => return Err(format!("unsupported escape {other:?}")),
            },
            Some((_, c)) => out.push(c),
        }
    }
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    is_choice: &'a dyn Fn(&str) -> bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: &Token) -> Result<(), String> {
        match self.next() {
            Some(t) if &t == want => Ok(()),
            other => Err(format!("expected {want:?}, found {other:?}")),
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w == word)
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("expression nested too deeply".into());
        }
        let mut left = self.equality()?;
        while self.keyword("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.equality()?));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn equality(&mut self) -> Result<Expr, String> {
        let left = self.union()?;
        let negated = match self.peek() {
            Some(Token::Eq) => false,
            Some(Token::Ne) => true,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.union()?;
        Ok(Expr::Equals {
            left: Box::new(left),
            right: Box::new(right),
            negated,
        })
    }

    fn union(&mut self) -> Result<Expr, String> {
        let first = self.type_op()?;
        if self.peek() != Some(&Token::Pipe) {
            return Ok(first);
        }
        let mut branches = vec![first];
        while self.peek() == Some(&Token::Pipe) {
            self.pos += 1;
            branches.push(self.type_op()?);
        }
        Ok(Expr::Union(branches))
    }

    fn type_op(&mut self) -> Result<Expr, String> {
        let operand = self.postfix()?;
        if self.keyword("is") || self.keyword("as") {
            let is = self.keyword("is");
            self.pos += 1;
            let ty = self.type_name()?;
            let operand = Box::new(operand);
            return Ok(if is {
                Expr::Is(operand, ty)
            } else {
                Expr::OfType(operand, ty)
            });
        }
        Ok(operand)
    }

    fn type_name(&mut self) -> Result<Box<str>, String> {
        match self.next() {
            Some(Token::Ident(name)) => Ok(name.into()),
            other => Err(format!("expected a type name, found {other:?}")),
        }
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut expr = self.primary()?;
        loop {
            match self.peek() {
                Some(Token::Dot) => {
                    self.pos += 1;
                    let name = match self.next() {
                        Some(Token::Ident(name)) => name,
                        other => return Err(format!("expected a name after '.', found {other:?}")),
                    };
                    expr = self.member(expr, name)?;
                }
                Some(Token::LBracket) => {
                    self.pos += 1;
                    let index = match self.next() {
                        Some(Token::Int(i)) => i,
                        other => return Err(format!("expected an index, found {other:?}")),
                    };
                    self.expect(&Token::RBracket)?;
                    expr = Expr::Index(Box::new(expr), index);
                }
                _ => return Ok(expr),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::LParen) => {
                let inner = self.expr()?;
                self.expect(&Token::RParen)?;
                Ok(inner)
            }
            Some(Token::Str(s)) => Ok(Expr::Str(s.into())),
            Some(Token::Env(name)) if name == "resource" => Ok(Expr::Resource),
            Some(Token::Ident(word)) if word == "true" || word == "false" => {
                Ok(Expr::Bool(word == "true"))
            }
            Some(Token::Ident(name)) => {
                if self.peek() == Some(&Token::LParen) {
                    self.member(Expr::This, name)
                } else if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    // FHIR element names start lower-case, type names upper-case.
                    Ok(Expr::TypeRoot(name.into()))
                } else {
                    Ok(self.child(Expr::This, &name))
                }
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }

    fn child(&self, base: Expr, name: &str) -> Expr {
        Expr::Child {
            base: Box::new(base),
            name: name.into(),
            choice: (self.is_choice)(name),
        }
    }

    /// `base.name` or the function call `base.name(...)`.
    fn member(&mut self, base: Expr, name: String) -> Result<Expr, String> {
        if self.peek() != Some(&Token::LParen) {
            return Ok(self.child(base, &name));
        }
        self.pos += 1;
        let base = Box::new(base);
        let call = match name.as_str() {
            "where" => Expr::Where(base, Box::new(self.expr()?)),
            "exists" => Expr::Exists(base),
            "resolve" => Expr::Resolve(base),
            "as" | "ofType" => Expr::OfType(base, self.type_name()?),
            "extension" => match self.next() {
                Some(Token::Str(url)) => Expr::Extension(base, url.into()),
                other => return Err(format!("extension() wants a string, found {other:?}")),
            },
            other => return Err(format!("unsupported function {other}()")),
        };
        self.expect(&Token::RParen)?;
        Ok(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(base: Expr, name: &str) -> Expr {
        Expr::Child {
            base: Box::new(base),
            name: name.into(),
            choice: name == "value",
        }
    }

    fn parse(text: &str) -> Result<Expr, String> {
        super::parse(text, &|name| name == "value")
    }

    #[test]
    fn paths_unions_and_type_operators() {
        let obs = || Expr::TypeRoot("Observation".into());
        assert_eq!(parse("Observation.code").unwrap(), child(obs(), "code"));
        assert_eq!(
            parse("(Observation.value as Quantity) | Observation.value.ofType(string)").unwrap(),
            Expr::Union(vec![
                Expr::OfType(Box::new(child(obs(), "value")), "Quantity".into()),
                Expr::OfType(Box::new(child(obs(), "value")), "string".into()),
            ])
        );
        assert_eq!(
            parse("name | alias").unwrap(),
            Expr::Union(vec![child(Expr::This, "name"), child(Expr::This, "alias")])
        );
        assert_eq!(
            parse("Bundle.entry[0].resource").unwrap(),
            child(
                Expr::Index(Box::new(child(Expr::TypeRoot("Bundle".into()), "entry")), 0),
                "resource"
            )
        );
    }

    #[test]
    fn functions_and_operators() {
        assert_eq!(
            parse("Observation.subject.where(resolve() is Patient)").unwrap(),
            Expr::Where(
                Box::new(child(Expr::TypeRoot("Observation".into()), "subject")),
                Box::new(Expr::Is(
                    Box::new(Expr::Resolve(Box::new(Expr::This))),
                    "Patient".into()
                ))
            )
        );
        assert_eq!(
            parse("Patient.deceased.exists() and Patient.deceased != false").unwrap(),
            Expr::And(
                Box::new(Expr::Exists(Box::new(child(
                    Expr::TypeRoot("Patient".into()),
                    "deceased"
                )))),
                Box::new(Expr::Equals {
                    left: Box::new(child(Expr::TypeRoot("Patient".into()), "deceased")),
                    right: Box::new(Expr::Bool(false)),
                    negated: true,
                })
            )
        );
        assert_eq!(
            parse("extension('http://x/it\\'s').value").unwrap(),
            child(
                Expr::Extension(Box::new(Expr::This), "http://x/it's".into()),
                "value"
            )
        );
        assert_eq!(
            parse("%resource.referenceSeq.chromosome").unwrap(),
            child(child(Expr::Resource, "referenceSeq"), "chromosome")
        );
    }

    #[test]
    fn unsupported_syntax_is_an_error_not_a_panic() {
        for bad in [
            "",
            "Patient.name.count()",
            "Patient.name.first()",
            "Patient.name[",
            "Patient.",
            "a + b",
            "'open",
            "(((",
            "Patient.name.where(",
            "%context",
            "x.extension(1)",
            "99999999999999999999999",
            "é",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse(&"(".repeat(100)).is_err());
    }
}
