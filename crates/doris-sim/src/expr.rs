//! The small expression language of the `where`, `delete` and `columns` (`c=expr`) headers: column references,
//! literals, `+ - * /` arithmetic, comparisons, `IS [NOT] NULL`, `[NOT] IN (...)`, `AND`/`OR`/`NOT`, parentheses.
//! Anything else is
//! refused with a message instead of being guessed.

use std::cmp::Ordering;

use crate::value::{ColType, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Col(String),
    Lit(String),
    /// A numeric literal (kept as text to be cast to the compared column's type).
    Num(String),
    Null,
    Bool(bool),
    Cmp(Box<Expr>, CmpOp, Box<Expr>),
    IsNull(Box<Expr>, bool),
    In(Box<Expr>, Vec<Expr>, bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `a + b`, `a - b`, `a * b`, `a / b`.
    Arith(Box<Expr>, char, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A value an expression sees: a typed column value, or untyped text (literal or temporary source column).
#[derive(Debug, Clone)]
pub enum EVal<'a> {
    Null,
    Bool(bool),
    Typed(&'a Value, &'a ColType),
    Text(std::borrow::Cow<'a, str>),
}

impl EVal<'_> {
    /// The value as text, for `c=expr` derived columns.
    pub fn to_text(&self) -> Option<String> {
        match self {
            EVal::Null => None,
            EVal::Bool(b) => Some(if *b { "1".into() } else { "0".into() }),
            EVal::Typed(v, t) => v.to_text(t),
            EVal::Text(s) => Some(s.to_string()),
        }
    }
}

/// Resolves column names while evaluating.
pub trait Scope {
    fn lookup(&self, name: &str) -> Option<EVal<'_>>;
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Op(String),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' || c == b'"' {
            let mut j = i + 1;
            let mut v = String::new();
            loop {
                match b.get(j) {
                    None => return Err(format!("unterminated string in `{s}`")),
                    Some(&q) if q == c => break,
                    Some(_) => {
                        let ch = s[j..].chars().next().ok_or("bad utf-8")?;
                        v.push(ch);
                        j += ch.len_utf8();
                    }
                }
            }
            out.push(Tok::Str(v));
            i = j + 1;
        } else if c == b'`' {
            let end = s[i + 1..]
                .find('`')
                .ok_or_else(|| format!("unterminated `name` in `{s}`"))?;
            out.push(Tok::Ident(s[i + 1..i + 1 + end].to_string()));
            i += end + 2;
        } else if c.is_ascii_digit()
            || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit) && prev_is_op(&out))
        {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                j += 1;
            }
            out.push(Tok::Num(s[i..j].to_string()));
            i = j;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            out.push(Tok::Ident(s[i..j].to_string()));
            i = j;
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            if ["<=", ">=", "!=", "<>", "=="].contains(&two) {
                out.push(Tok::Op(two.to_string()));
                i += 2;
            } else if b"=<>(),+-*/".contains(&c) {
                out.push(Tok::Op((c as char).to_string()));
                i += 1;
            } else {
                return Err(format!("unsupported character `{}` in `{s}`", c as char));
            }
        }
    }
    Ok(out)
}

fn prev_is_op(out: &[Tok]) -> bool {
    matches!(out.last(), None | Some(Tok::Op(_)))
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
    src: String,
}

impl P {
    fn kw(&self, k: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(k))
    }
    fn eat_kw(&mut self, k: &str) -> bool {
        let hit = self.kw(k);
        if hit {
            self.pos += 1;
        }
        hit
    }
    fn eat_op(&mut self, o: &str) -> bool {
        let hit = matches!(self.toks.get(self.pos), Some(Tok::Op(x)) if x == o);
        if hit {
            self.pos += 1;
        }
        hit
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.eat_kw("OR") {
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.not()?;
        while self.eat_kw("AND") {
            l = Expr::And(Box::new(l), Box::new(self.not()?));
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_kw("NOT") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn additive(&mut self) -> Result<Expr, String> {
        let mut l = self.multiplicative()?;
        loop {
            let op = if self.eat_op("+") {
                '+'
            } else if self.eat_op("-") {
                '-'
            } else {
                return Ok(l);
            };
            l = Expr::Arith(Box::new(l), op, Box::new(self.multiplicative()?));
        }
    }
    fn multiplicative(&mut self) -> Result<Expr, String> {
        let mut l = self.primary()?;
        loop {
            let op = if self.eat_op("*") {
                '*'
            } else if self.eat_op("/") {
                '/'
            } else {
                return Ok(l);
            };
            l = Expr::Arith(Box::new(l), op, Box::new(self.primary()?));
        }
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let l = self.additive()?;
        for (o, op) in [
            ("=", CmpOp::Eq),
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<>", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ] {
            if self.eat_op(o) {
                return Ok(Expr::Cmp(Box::new(l), op, Box::new(self.additive()?)));
            }
        }
        if self.eat_kw("IS") {
            let neg = self.eat_kw("NOT");
            if !self.eat_kw("NULL") {
                return Err(format!("expected NULL after IS in `{}`", self.src));
            }
            return Ok(Expr::IsNull(Box::new(l), !neg));
        }
        let neg = if self.kw("NOT")
            && matches!(self.toks.get(self.pos + 1), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("IN"))
        {
            self.pos += 1;
            true
        } else {
            false
        };
        if self.eat_kw("IN") {
            if !self.eat_op("(") {
                return Err(format!("expected `(` after IN in `{}`", self.src));
            }
            let mut items = vec![self.primary()?];
            while self.eat_op(",") {
                items.push(self.primary()?);
            }
            if !self.eat_op(")") {
                return Err(format!("expected `)` in `{}`", self.src));
            }
            return Ok(Expr::In(Box::new(l), items, neg));
        }
        Ok(l)
    }
    fn primary(&mut self) -> Result<Expr, String> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match t {
            Some(Tok::Op(o)) if o == "(" => {
                let e = self.or()?;
                if !self.eat_op(")") {
                    return Err(format!("expected `)` in `{}`", self.src));
                }
                Ok(e)
            }
            Some(Tok::Str(s)) => Ok(Expr::Lit(s)),
            Some(Tok::Num(n)) => Ok(Expr::Num(n)),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("NULL") => Ok(Expr::Null),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("TRUE") => Ok(Expr::Bool(true)),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("FALSE") => Ok(Expr::Bool(false)),
            Some(Tok::Ident(w)) => {
                if matches!(self.toks.get(self.pos), Some(Tok::Op(o)) if o == "(") {
                    return Err(format!(
                        "function `{w}` is not supported by doris-sim in `{}`",
                        self.src
                    ));
                }
                Ok(Expr::Col(w))
            }
            _ => Err(format!("unexpected end or token in `{}`", self.src)),
        }
    }
}

/// Parses an expression; the error text names the expression and what is unsupported.
pub fn parse(s: &str) -> Result<Expr, String> {
    let mut p = P {
        toks: lex(s)?,
        pos: 0,
        src: s.to_string(),
    };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected trailing tokens in `{s}`"));
    }
    Ok(e)
}

impl Expr {
    /// Every column name the expression reads.
    pub fn columns(&self, out: &mut Vec<String>) {
        match self {
            Expr::Col(c) => out.push(c.clone()),
            Expr::Cmp(a, _, b) | Expr::And(a, b) | Expr::Or(a, b) | Expr::Arith(a, _, b) => {
                a.columns(out);
                b.columns(out);
            }
            Expr::IsNull(a, _) | Expr::Not(a) => a.columns(out),
            Expr::In(a, items, _) => {
                a.columns(out);
                for i in items {
                    i.columns(out);
                }
            }
            _ => {}
        }
    }

    /// Evaluates to a value (for derived columns).
    pub fn eval<'a>(&'a self, scope: &'a dyn Scope) -> EVal<'a> {
        match self {
            Expr::Col(c) => scope.lookup(c).unwrap_or(EVal::Null),
            Expr::Lit(s) | Expr::Num(s) => EVal::Text(s.as_str().into()),
            Expr::Null => EVal::Null,
            Expr::Bool(b) => EVal::Bool(*b),
            Expr::Arith(a, op, b) => match (a.eval(scope).to_text(), b.eval(scope).to_text()) {
                (Some(x), Some(y)) => arith(x.trim(), *op, y.trim())
                    .map(|t| EVal::Text(t.into()))
                    .unwrap_or(EVal::Null),
                _ => EVal::Null,
            },
            other => match other.test(scope) {
                Some(b) => EVal::Bool(b),
                None => EVal::Null,
            },
        }
    }

    /// Evaluates as a predicate with SQL three-valued logic (`None` = NULL).
    pub fn test(&self, scope: &dyn Scope) -> Option<bool> {
        match self {
            Expr::And(a, b) => match (a.test(scope), b.test(scope)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Expr::Or(a, b) => match (a.test(scope), b.test(scope)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Expr::Not(a) => a.test(scope).map(|b| !b),
            Expr::IsNull(a, want_null) => Some(matches!(a.eval(scope), EVal::Null) == *want_null),
            Expr::Cmp(a, op, b) => {
                let ord = compare(&a.eval(scope), &b.eval(scope))?;
                Some(match op {
                    CmpOp::Eq => ord == Ordering::Equal,
                    CmpOp::Ne => ord != Ordering::Equal,
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                })
            }
            Expr::In(a, items, neg) => {
                let v = a.eval(scope);
                if matches!(v, EVal::Null) {
                    return None;
                }
                let hit = items
                    .iter()
                    .any(|i| compare(&v, &i.eval(scope)) == Some(Ordering::Equal));
                Some(hit != *neg)
            }
            other => match other.eval(scope) {
                EVal::Null => None,
                EVal::Bool(b) => Some(b),
                EVal::Typed(Value::Bool(b), _) => Some(*b),
                EVal::Typed(Value::Int(i), _) => Some(*i != 0),
                EVal::Typed(..) => None,
                EVal::Text(t) => {
                    Some(!(t == "0" || t.eq_ignore_ascii_case("false") || t.is_empty()))
                }
            },
        }
    }
}

/// Integer arithmetic when both sides are integers (as Doris keeps BIGINT/LARGEINT exact), else double arithmetic;
/// `None` (SQL NULL) for a non-number or a division by zero. `/` is always a double division, as in Doris.
fn arith(x: &str, op: char, y: &str) -> Option<String> {
    if op != '/' {
        if let (Ok(a), Ok(b)) = (x.parse::<i128>(), y.parse::<i128>()) {
            let r = match op {
                '+' => a.checked_add(b),
                '-' => a.checked_sub(b),
                _ => a.checked_mul(b),
            };
            if let Some(r) = r {
                return Some(r.to_string());
            }
        }
    }
    let (a, b) = (x.parse::<f64>().ok()?, y.parse::<f64>().ok()?);
    let r = match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        _ if b == 0.0 => return None,
        _ => a / b,
    };
    r.is_finite().then(|| r.to_string())
}

fn compare(a: &EVal<'_>, b: &EVal<'_>) -> Option<Ordering> {
    use crate::value::{parse_text, LoadTz};
    match (a, b) {
        (EVal::Null, _) | (_, EVal::Null) => None,
        (EVal::Typed(v, t), other) | (other, EVal::Typed(v, t))
            if !matches!(other, EVal::Typed(..)) =>
        {
            let text = other.to_text()?;
            let lit = parse_text(t, &text, LoadTz::default()).ok()?;
            let ord = (*v).cmp(&lit);
            // Keep the operand order: if the typed side was on the right, flip.
            Some(if matches!(a, EVal::Typed(..)) {
                ord
            } else {
                ord.reverse()
            })
        }
        (EVal::Typed(x, _), EVal::Typed(y, _)) => Some((*x).cmp(*y)),
        _ => {
            let (x, y) = (a.to_text()?, b.to_text()?);
            match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(p), Ok(q)) => p.partial_cmp(&q),
                _ => Some(x.cmp(&y)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct S(Value, ColType);
    impl Scope for S {
        fn lookup(&self, name: &str) -> Option<EVal<'_>> {
            (name == "k").then_some(EVal::Typed(&self.0, &self.1))
        }
    }

    #[test]
    fn predicates_evaluate_with_types() {
        let s = S(Value::Int(5), ColType::BigInt);
        assert_eq!(parse("k > 3 and k <= 5").unwrap().test(&s), Some(true));
        assert_eq!(parse("k = '5'").unwrap().test(&s), Some(true));
        assert_eq!(parse("k in (1, 2)").unwrap().test(&s), Some(false));
        assert_eq!(parse("not (k is null)").unwrap().test(&s), Some(true));
        assert_eq!(parse("missing = 1").unwrap().test(&s), None);
        assert!(parse("upper(k) = 1").is_err());
    }
}
