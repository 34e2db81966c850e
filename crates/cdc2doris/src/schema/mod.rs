//! The merge query's columns against the Doris table: which Doris type holds a PostgreSQL column's values
//! ([`doris_type_for`], used by `cdc2doris ddl`), and whether an existing Doris column does ([`fit`], used by
//! `cdc2doris check`). The mapping is documented in docs/types.md.
//!
//! What the service loads is `to_jsonb(row)` of the merge query's row, so each value reaches Doris as its JSON form:
//! numbers as written (every digit of a numeric), booleans as `true`/`false`, text as text, and timestamps in
//! ISO 8601. Doris counts `VARCHAR(n)` and `CHAR(n)` in bytes, and a PostgreSQL `varchar(n)` in characters (up to 4
//! bytes each in UTF-8).

pub mod ddl;

use tokio_postgres::types::Type;

/// The widest Doris `VARCHAR`, in bytes.
pub const MAX_VARCHAR: u32 = 65_533;

/// The widest Doris `DECIMAL` precision (DECIMALV3).
pub const MAX_DECIMAL_PRECISION: u32 = 38;

/// One output column of the merge query, as the prepared statement describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgColumn {
    pub name: String,
    /// The type's name (`int8`, `numeric`, `timestamptz`, …).
    pub type_name: String,
    pub kind: PgKind,
}

/// What a PostgreSQL type holds, as far as the mapping needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgKind {
    Bool,
    /// `int2`, `int4`, `int8`: the width in bits.
    Int(u32),
    Float4,
    Float8,
    /// `numeric(p,s)`; `None` without a declared precision (any value).
    Numeric(Option<(u32, u32)>),
    Date,
    /// `timestamp`/`timestamptz` with this many fractional digits (6 when undeclared).
    Timestamp {
        precision: u32,
        tz: bool,
    },
    /// `text`, `varchar(n)`, `char(n)`, `name`: the declared length in characters, if any.
    Text(Option<u32>),
    Uuid,
    Json,
    /// Anything else (`time`, `interval`, arrays, enums, …): loaded as its JSON text.
    Other,
}

impl PgColumn {
    /// From the statement description: the type and its modifier (`atttypmod`: length, precision, scale).
    pub fn from_column(c: &tokio_postgres::Column) -> PgColumn {
        PgColumn {
            name: c.name().to_owned(),
            type_name: c.type_().name().to_owned(),
            kind: PgKind::of(c.type_(), c.type_modifier()),
        }
    }
}

impl PgKind {
    /// The kind of a type with its type modifier (-1 when none).
    pub fn of(ty: &Type, typmod: i32) -> PgKind {
        // varchar/bpchar: length + 4; numeric: ((precision << 16) | scale) + 4; timestamps: the precision.
        let length = (typmod >= 4).then(|| (typmod - 4) as u32);
        match *ty {
            Type::BOOL => PgKind::Bool,
            Type::INT2 => PgKind::Int(16),
            Type::INT4 => PgKind::Int(32),
            Type::INT8 => PgKind::Int(64),
            Type::FLOAT4 => PgKind::Float4,
            Type::FLOAT8 => PgKind::Float8,
            Type::NUMERIC => PgKind::Numeric(length.map(|m| ((m >> 16) & 0xffff, m & 0xffff))),
            Type::DATE => PgKind::Date,
            Type::TIMESTAMP | Type::TIMESTAMPTZ => PgKind::Timestamp {
                precision: u32::try_from(typmod).map_or(6, |p| p.min(6)),
                tz: *ty == Type::TIMESTAMPTZ,
            },
            Type::TEXT | Type::NAME => PgKind::Text(None),
            Type::VARCHAR | Type::BPCHAR => PgKind::Text(length),
            Type::UUID => PgKind::Uuid,
            Type::JSON | Type::JSONB => PgKind::Json,
            _ => PgKind::Other,
        }
    }
}

/// A Doris column type, parsed from `DESC` (`bigint`, `decimal(12,2)`, `DECIMALV3(12, 2)`, `varchar(128)`, `text`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DorisType {
    Boolean,
    /// TINYINT … LARGEINT: the width in bits.
    Int(u32),
    Float,
    Double,
    Decimal {
        precision: u32,
        scale: u32,
    },
    Date,
    DateTime {
        precision: u32,
    },
    /// `CHAR(n)`/`VARCHAR(n)`: n bytes.
    Varchar(u32),
    /// `STRING` (`TEXT` in `DESC`).
    String,
    Json,
    /// Anything else (ARRAY, MAP, VARIANT, IPV4, …), as `DESC` printed it.
    Other(String),
}

impl DorisType {
    /// Reads a type as `DESC` or `SHOW CREATE TABLE` prints it.
    pub fn parse(text: &str) -> DorisType {
        let t = text.trim().to_ascii_uppercase();
        let (name, args) = match t.split_once('(') {
            Some((n, rest)) => (n.trim().to_owned(), rest.trim_end_matches(')').to_owned()),
            None => (t.clone(), String::new()),
        };
        let base = name
            .strip_suffix("V3")
            .or_else(|| name.strip_suffix("V2"))
            .unwrap_or(&name);
        let nums: Vec<u32> = args
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        match base {
            "BOOLEAN" | "BOOL" => DorisType::Boolean,
            "TINYINT" => DorisType::Int(8),
            "SMALLINT" => DorisType::Int(16),
            "INT" | "INTEGER" => DorisType::Int(32),
            "BIGINT" => DorisType::Int(64),
            "LARGEINT" => DorisType::Int(128),
            "FLOAT" => DorisType::Float,
            "DOUBLE" => DorisType::Double,
            "DECIMAL" | "DECIMAL32" | "DECIMAL64" | "DECIMAL128" | "DECIMAL128I" | "DECIMAL256" => {
                DorisType::Decimal {
                    // Doris's default DECIMAL is DECIMAL(9,0).
                    precision: nums.first().copied().unwrap_or(9),
                    scale: nums.get(1).copied().unwrap_or(0),
                }
            }
            "DATE" => DorisType::Date,
            "DATETIME" => DorisType::DateTime {
                precision: nums.first().copied().unwrap_or(0).min(6),
            },
            "CHAR" => DorisType::Varchar(nums.first().copied().unwrap_or(1)),
            "VARCHAR" => DorisType::Varchar(nums.first().copied().unwrap_or(1)),
            "STRING" | "TEXT" => DorisType::String,
            "JSON" | "JSONB" => DorisType::Json,
            _ => DorisType::Other(text.trim().to_owned()),
        }
    }

    /// The type as written in a `CREATE TABLE`.
    pub fn sql(&self) -> String {
        match self {
            DorisType::Boolean => "BOOLEAN".into(),
            DorisType::Int(8) => "TINYINT".into(),
            DorisType::Int(16) => "SMALLINT".into(),
            DorisType::Int(32) => "INT".into(),
            DorisType::Int(64) => "BIGINT".into(),
            DorisType::Int(_) => "LARGEINT".into(),
            DorisType::Float => "FLOAT".into(),
            DorisType::Double => "DOUBLE".into(),
            DorisType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            DorisType::Date => "DATE".into(),
            DorisType::DateTime { precision } => format!("DATETIME({precision})"),
            DorisType::Varchar(n) => format!("VARCHAR({n})"),
            DorisType::String => "STRING".into(),
            DorisType::Json => "JSON".into(),
            DorisType::Other(t) => t.clone(),
        }
    }
}

/// The Doris type for a PostgreSQL column, and a note when the choice needs a human look.
pub fn doris_type_for(pg: &PgKind) -> (DorisType, Option<&'static str>) {
    match *pg {
        PgKind::Bool => (DorisType::Boolean, None),
        PgKind::Int(bits) => (DorisType::Int(bits), None),
        PgKind::Float4 => (DorisType::Float, None),
        PgKind::Float8 => (DorisType::Double, None),
        PgKind::Numeric(Some((p, s))) if p <= MAX_DECIMAL_PRECISION => (
            DorisType::Decimal {
                precision: p,
                scale: s,
            },
            None,
        ),
        PgKind::Numeric(Some(_)) => (
            DorisType::String,
            Some("numeric wider than DECIMAL(38): kept as text"),
        ),
        PgKind::Numeric(None) => (
            DorisType::Decimal {
                precision: MAX_DECIMAL_PRECISION,
                scale: 9,
            },
            Some("numeric without a declared precision: choose DECIMAL(p,s) for its values"),
        ),
        PgKind::Date => (DorisType::Date, None),
        PgKind::Timestamp { precision, tz } => (
            DorisType::DateTime { precision },
            tz.then_some("timestamptz: Doris DATETIME has no time zone; render UTC in the query"),
        ),
        PgKind::Text(Some(n)) if n.saturating_mul(4) <= MAX_VARCHAR => {
            (DorisType::Varchar(n * 4), None)
        }
        PgKind::Text(_) => (DorisType::String, None),
        PgKind::Uuid => (DorisType::Varchar(36), None),
        PgKind::Json => (DorisType::Json, None),
        PgKind::Other => (
            DorisType::String,
            Some("no Doris equivalent: loaded as its JSON text"),
        ),
    }
}

/// The Doris type for the key column: a key cannot be STRING, FLOAT, DOUBLE or JSON.
pub fn doris_key_type_for(pg: &PgKind) -> (DorisType, Option<&'static str>) {
    match doris_type_for(pg) {
        (DorisType::String | DorisType::Json, _) | (DorisType::Float | DorisType::Double, _) => (
            DorisType::Varchar(256),
            Some(
                "a key column cannot be STRING: VARCHAR(256) assumed, widen it if keys are longer",
            ),
        ),
        other => other,
    }
}

/// Whether a Doris column holds a merge-query column's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    /// Every value fits.
    Holds,
    /// Some values may not fit (or lose something): what and what to do.
    Risky(String),
    /// Values will be refused, rounded or cut: what and what to do.
    Wrong(String),
}

/// Decimal digits of the largest integer of `bits` bits.
fn int_digits(bits: u32) -> u32 {
    match bits {
        8 => 3,
        16 => 5,
        32 => 10,
        64 => 19,
        _ => 39,
    }
}

/// Whether a Doris column of type `doris` holds the values of a merge-query column of kind `pg` (rendered by
/// `to_jsonb`). Text columns may hold anything the query renders (e.g. a timestamp formatted for DATETIME), so text
/// into a typed column is not judged; text into a shorter string column is.
pub fn fit(pg: &PgColumn, doris: &DorisType) -> Fit {
    use DorisType as D;
    use PgKind as P;
    let want = doris_type_for(&pg.kind).0.sql();
    let have = doris.sql();
    let pg_type = pg_type_text(pg);
    let wrong = |why: String| Fit::Wrong(format!("{pg_type} into {have}: {why}; make it {want}"));
    let risky = |why: String| Fit::Risky(format!("{pg_type} into {have}: {why}; make it {want}"));
    match (&pg.kind, doris) {
        (_, D::String) => Fit::Holds,
        (_, D::Other(_)) => risky("a type cdc2doris does not check".into()),
        (P::Other, _) => Fit::Holds,
        (P::Bool, D::Boolean) => Fit::Holds,
        (P::Bool, D::Int(_)) => risky("stored as 1/0".into()),
        (P::Bool, D::Varchar(_)) => risky("stored as text".into()),
        (P::Int(bits), D::Int(have_bits)) if have_bits >= bits => Fit::Holds,
        (P::Int(bits), D::Int(have_bits)) => wrong(format!(
            "{bits}-bit values do not all fit {have_bits} bits, and a row that does not fit is refused"
        )),
        (P::Int(bits), D::Decimal { precision, scale })
            if precision.saturating_sub(*scale) >= int_digits(*bits) =>
        {
            Fit::Holds
        }
        (P::Int(_), D::Decimal { .. }) => {
            wrong("large values have too many integer digits and the row is refused".into())
        }
        (P::Int(64), D::Float | D::Double) | (P::Int(_), D::Float) => {
            risky("large values lose digits in a binary float".into())
        }
        (P::Int(_), D::Double) => Fit::Holds,
        (P::Int(bits), D::Varchar(n)) if *n > int_digits(*bits) => Fit::Holds,
        (P::Numeric(Some((p, s))), D::Decimal { precision, scale }) => {
            if scale < s {
                wrong(format!(
                    "values with {s} decimals are rounded to {scale}"
                ))
            } else if precision.saturating_sub(*scale) < p.saturating_sub(*s) {
                wrong(format!(
                    "values with {} integer digits do not fit and the row is refused",
                    p.saturating_sub(*s)
                ))
            } else {
                Fit::Holds
            }
        }
        (P::Numeric(None), D::Decimal { .. }) => Fit::Risky(format!(
            "{pg_type} into {have}: numeric without a declared precision holds any value, and one with more digits is \
             refused or rounded; cast it in the query (e.g. ::numeric({},{})) so its values are known to fit, or \
             widen the column",
            decimal_args(doris).0,
            decimal_args(doris).1
        )),
        (P::Numeric(Some((p, 0))), D::Int(bits)) if *p <= int_digits(*bits).saturating_sub(1) => {
            Fit::Holds
        }
        (P::Numeric(_), D::Int(_)) => wrong("fractions are cut and large values refused".into()),
        (P::Numeric(_), D::Float | D::Double) => {
            risky("decimal values become binary approximations".into())
        }
        (P::Float4, D::Float | D::Double) | (P::Float8, D::Double) => Fit::Holds,
        (P::Float8, D::Float) => risky("double precision values lose digits in FLOAT".into()),
        (P::Float4 | P::Float8, D::Decimal { .. }) => {
            risky("binary floats are rounded to the column's scale".into())
        }
        (P::Date, D::Date | D::DateTime { .. }) => Fit::Holds,
        (P::Timestamp { precision, .. }, D::DateTime { precision: have_p }) if have_p >= precision => {
            Fit::Holds
        }
        (P::Timestamp { .. }, D::DateTime { precision: have_p }) => wrong(format!(
            "fractional seconds beyond {have_p} digits are lost"
        )),
        (P::Timestamp { .. }, D::Date) => wrong("the time of day is lost".into()),
        (P::Uuid, D::Varchar(n)) if *n >= 36 => Fit::Holds,
        (P::Uuid, D::Varchar(n)) => wrong(format!("a uuid takes 36 bytes, more than {n}")),
        (P::Text(_) | P::Json, D::Varchar(n)) => {
            let chars = match pg.kind {
                P::Text(len) => len,
                _ => None,
            };
            match chars {
                Some(c) if c.saturating_mul(4) <= *n => Fit::Holds,
                Some(c) if c <= *n => risky(format!(
                    "Doris counts bytes: {c} characters may take up to {} bytes in UTF-8, and a longer row is refused",
                    c.saturating_mul(4)
                )),
                Some(c) => wrong(format!(
                    "values of up to {c} characters do not fit {n} bytes and the row is refused"
                )),
                None => Fit::Risky(format!(
                    "{pg_type} into {have}: values longer than {n} bytes are refused (the row is dead-lettered); make \
                     it STRING or VARCHAR({MAX_VARCHAR}), or bound the values in the query (e.g. left(col, {}))",
                    n / 4
                )),
            }
        }
        (P::Json, D::Json) => Fit::Holds,
        (P::Text(_), D::Json) => risky("text must hold a JSON document".into()),
        // Text rendered by the query (e.g. to_char(… , 'YYYY-MM-DD HH24:MI:SS.US') for DATETIME): not judged.
        (P::Text(_), _) => Fit::Holds,
        _ => wrong("the values do not convert".into()),
    }
}

fn decimal_args(doris: &DorisType) -> (u32, u32) {
    match doris {
        DorisType::Decimal { precision, scale } => (*precision, *scale),
        _ => (MAX_DECIMAL_PRECISION, 9),
    }
}

/// `numeric(12,2)`, `varchar(40)`, `timestamptz(3)`, `text`.
pub fn pg_type_text(pg: &PgColumn) -> String {
    match pg.kind {
        PgKind::Numeric(Some((p, s))) => format!("{}({p},{s})", pg.type_name),
        PgKind::Text(Some(n)) => format!("{}({n})", pg.type_name),
        PgKind::Timestamp { precision, .. } if precision < 6 => {
            format!("{}({precision})", pg.type_name)
        }
        _ => pg.type_name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(kind: PgKind, type_name: &str) -> PgColumn {
        PgColumn {
            name: "c".into(),
            type_name: type_name.into(),
            kind,
        }
    }

    #[test]
    fn type_modifiers_decode() {
        // numeric(12,2): ((12 << 16) | 2) + 4
        assert_eq!(
            PgKind::of(&Type::NUMERIC, (12 << 16 | 2) + 4),
            PgKind::Numeric(Some((12, 2)))
        );
        assert_eq!(PgKind::of(&Type::NUMERIC, -1), PgKind::Numeric(None));
        assert_eq!(PgKind::of(&Type::VARCHAR, 44), PgKind::Text(Some(40)));
        assert_eq!(PgKind::of(&Type::TEXT, -1), PgKind::Text(None));
        assert_eq!(
            PgKind::of(&Type::TIMESTAMPTZ, -1),
            PgKind::Timestamp {
                precision: 6,
                tz: true
            }
        );
        assert_eq!(
            PgKind::of(&Type::TIMESTAMP, 3),
            PgKind::Timestamp {
                precision: 3,
                tz: false
            }
        );
    }

    #[test]
    fn doris_types_parse_as_desc_prints_them() {
        assert_eq!(DorisType::parse("bigint"), DorisType::Int(64));
        assert_eq!(DorisType::parse("INT"), DorisType::Int(32));
        assert_eq!(
            DorisType::parse("decimalv3(12, 2)"),
            DorisType::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(
            DorisType::parse("DATETIMEV2(6)"),
            DorisType::DateTime { precision: 6 }
        );
        assert_eq!(DorisType::parse("varchar(32)"), DorisType::Varchar(32));
        assert_eq!(DorisType::parse("text"), DorisType::String);
        assert_eq!(
            DorisType::parse("DECIMALV3(18,4)"),
            DorisType::Decimal {
                precision: 18,
                scale: 4
            }
        );
        assert_eq!(
            DorisType::parse("datetime"),
            DorisType::DateTime { precision: 0 }
        );
        assert_eq!(DorisType::parse("JSONB"), DorisType::Json);
        assert_eq!(
            DorisType::parse("ARRAY<INT>"),
            DorisType::Other("ARRAY<INT>".into())
        );
    }

    #[test]
    fn the_mistakes_are_caught() {
        let numeric = col(PgKind::Numeric(Some((12, 2))), "numeric");
        assert!(matches!(fit(&numeric, &DorisType::Int(32)), Fit::Wrong(_)));
        assert!(matches!(
            fit(
                &numeric,
                &DorisType::Decimal {
                    precision: 10,
                    scale: 0
                }
            ),
            Fit::Wrong(_)
        ));
        assert_eq!(
            fit(
                &numeric,
                &DorisType::Decimal {
                    precision: 12,
                    scale: 2
                }
            ),
            Fit::Holds
        );
        let text = col(PgKind::Text(None), "text");
        let Fit::Risky(why) = fit(&text, &DorisType::Varchar(32)) else {
            panic!("text into VARCHAR(32) must be flagged");
        };
        assert!(why.contains("make it STRING"), "{why}");
        assert!(matches!(
            fit(
                &col(PgKind::Text(Some(40)), "varchar"),
                &DorisType::Varchar(32)
            ),
            Fit::Wrong(_)
        ));
        let ts = col(
            PgKind::Timestamp {
                precision: 6,
                tz: true,
            },
            "timestamptz",
        );
        let Fit::Wrong(why) = fit(&ts, &DorisType::Date) else {
            panic!("timestamptz into DATE must fail");
        };
        assert!(why.contains("make it DATETIME(6)"), "{why}");
        assert!(matches!(
            fit(&col(PgKind::Int(64), "int8"), &DorisType::Int(32)),
            Fit::Wrong(_)
        ));
        assert_eq!(
            fit(&col(PgKind::Int(32), "int4"), &DorisType::Int(64)),
            Fit::Holds
        );
        // Rendered text into a typed column is the query's business.
        assert_eq!(
            fit(&text, &DorisType::DateTime { precision: 6 }),
            Fit::Holds
        );
        assert!(matches!(
            fit(&col(PgKind::Bool, "bool"), &DorisType::Date),
            Fit::Wrong(_)
        ));
    }

    #[test]
    fn mapping_round_trips_through_parse() {
        for kind in [
            PgKind::Bool,
            PgKind::Int(16),
            PgKind::Int(32),
            PgKind::Int(64),
            PgKind::Float4,
            PgKind::Float8,
            PgKind::Numeric(Some((12, 2))),
            PgKind::Numeric(None),
            PgKind::Date,
            PgKind::Timestamp {
                precision: 3,
                tz: false,
            },
            PgKind::Text(Some(10)),
            PgKind::Text(None),
            PgKind::Uuid,
            PgKind::Json,
            PgKind::Other,
        ] {
            let (ty, _) = doris_type_for(&kind);
            assert_eq!(DorisType::parse(&ty.sql()), ty);
            assert_ne!(
                fit(&col(kind, "x"), &ty),
                Fit::Wrong(String::new()),
                "{kind:?}"
            );
            assert!(
                !matches!(fit(&col(kind, "x"), &ty), Fit::Wrong(_)),
                "{kind:?} into {}",
                ty.sql()
            );
        }
    }
}
