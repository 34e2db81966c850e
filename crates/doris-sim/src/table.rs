//! Stored rows of one table and how a committed load changes them (spec §6 data-model semantics).
//!
//! Applying a prepared load cannot fail, which is what makes loads atomic: all checks happen while the load is
//! prepared (`load.rs`), and `apply` only mutates.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::ddl::{AggFn, KeyModel, Sequence, TableDef};
use crate::value::Value;

/// One row of a prepared load.
#[derive(Debug, Clone)]
pub struct RowOp {
    /// All table columns in schema order (absent columns of a partial update are `Null` and masked out).
    pub values: Box<[Value]>,
    /// `__DORIS_DELETE_SIGN__` = 1.
    pub delete: bool,
    /// `__DORIS_SEQUENCE_COL__` (Null when the table has no sequence).
    pub seq: Value,
    /// Partial update: which columns the load supplied; `None` = whole row.
    pub present: Option<Box<[bool]>>,
}

/// A bound of a `BTreeMap` range over whole keys.
type KeyBound = Bound<Box<[Value]>>;

/// Which keys a scan needs (the first key column), so a point or range read does not walk the whole table.
#[derive(Debug, Clone)]
pub enum KeyFilter {
    All,
    Range(Bound<Value>, Bound<Value>),
    /// Sorted, without duplicates.
    Points(Vec<Value>),
}

/// A stored Unique-model row: `None` values is a delete tombstone kept for its sequence value, so a late row with a
/// smaller sequence cannot resurrect a deleted key (spec §6 "Deletes follow the same rule").
#[derive(Debug, Clone)]
struct UniqueRow {
    /// The whole row, key columns included (the map key is a copy of them: moving the load's row in is cheaper than
    /// splitting it).
    values: Option<Box<[Value]>>,
    seq: Value,
}

#[derive(Debug, Default)]
pub struct TableData {
    unique: BTreeMap<Box<[Value]>, UniqueRow>,
    aggregate: BTreeMap<Box<[Value]>, Box<[Value]>>,
    duplicate: Vec<Box<[Value]>>,
    /// Visible rows (tombstones excluded).
    visible: usize,
}

impl TableData {
    pub fn visible_rows(&self) -> usize {
        self.visible
    }

    /// Whether `key` (the key columns) currently has a visible row; used by partial updates with
    /// `partial_update_new_key_behavior: ERROR`.
    pub fn has_key(&self, key: &[Value]) -> bool {
        self.unique.get(key).is_some_and(|r| r.values.is_some())
    }

    /// Visible rows sorted by key (Duplicate rows with equal keys keep load order).
    pub fn rows(&self, def: &TableDef) -> Vec<Box<[Value]>> {
        match def.model {
            KeyModel::Unique => self
                .unique
                .values()
                .filter_map(|r| r.values.clone())
                .collect(),
            KeyModel::Aggregate => self
                .aggregate
                .iter()
                .map(|(k, v)| k.iter().chain(v.iter()).cloned().collect())
                .collect(),
            KeyModel::Duplicate => {
                let mut rows = self.duplicate.clone();
                rows.sort_by(|a, b| a[..def.key_len].cmp(&b[..def.key_len]));
                rows
            }
        }
    }

    /// Visible rows in key order with their sequence values (`Null` when the table has none), for the query port;
    /// `visit` returns false to stop. `keys` narrows a single-column Unique key to a range or to points; other tables
    /// are walked whole (the caller filters every row anyway).
    pub fn scan(
        &self,
        def: &TableDef,
        keys: &KeyFilter,
        mut visit: impl FnMut(&[Value], &Value) -> bool,
    ) {
        let null = Value::Null;
        if def.model == KeyModel::Unique && def.key_len == 1 {
            match keys {
                KeyFilter::All => {}
                KeyFilter::Points(points) => {
                    for p in points {
                        if let Some(r) = self.unique.get(std::slice::from_ref(p)) {
                            if let Some(v) = &r.values {
                                if !visit(v, &r.seq) {
                                    return;
                                }
                            }
                        }
                    }
                    return;
                }
                KeyFilter::Range(lo, hi) => {
                    let bound = |b: &Bound<Value>| match b {
                        Bound::Included(v) => Bound::Included(Box::from([v.clone()])),
                        Bound::Excluded(v) => Bound::Excluded(Box::from([v.clone()])),
                        Bound::Unbounded => Bound::Unbounded,
                    };
                    // BTreeMap::range panics on an empty or inverted range: answer those with no rows.
                    if let (
                        Bound::Included(a) | Bound::Excluded(a),
                        Bound::Included(b) | Bound::Excluded(b),
                    ) = (lo, hi)
                    {
                        let both_in = matches!((lo, hi), (Bound::Included(_), Bound::Included(_)));
                        if a > b || (a == b && !both_in) {
                            return;
                        }
                    }
                    let range: (KeyBound, KeyBound) = (bound(lo), bound(hi));
                    for r in self.unique.range(range).map(|(_, r)| r) {
                        if let Some(v) = &r.values {
                            if !visit(v, &r.seq) {
                                return;
                            }
                        }
                    }
                    return;
                }
            }
        }
        if def.model == KeyModel::Unique {
            for r in self.unique.values() {
                if let Some(v) = &r.values {
                    if !visit(v, &r.seq) {
                        return;
                    }
                }
            }
            return;
        }
        for row in self.rows(def) {
            if !visit(&row, &null) {
                return;
            }
        }
    }

    /// Applies one committed load, rows in order (within a batch the later row wins on ties). Takes the rows by
    /// value so stored values are moved, not copied.
    pub fn apply(&mut self, def: &TableDef, ops: Vec<RowOp>) {
        let k = def.key_len;
        let has_seq = def.sequence != Sequence::None;
        for op in ops {
            match def.model {
                KeyModel::Duplicate => {
                    if !op.delete {
                        self.duplicate.push(op.values);
                        self.visible += 1;
                    }
                }
                KeyModel::Aggregate => {
                    let (key, vals) = split_row(op.values, k);
                    match self.aggregate.get_mut(&key) {
                        Some(stored) => {
                            for (i, v) in vals.iter().enumerate() {
                                aggregate(def.columns[k + i].agg, &mut stored[i], v);
                            }
                        }
                        None => {
                            self.aggregate.insert(key, vals);
                            self.visible += 1;
                        }
                    }
                }
                KeyModel::Unique => self.apply_unique(def, op, has_seq),
            }
        }
    }

    fn apply_unique(&mut self, def: &TableDef, op: RowOp, has_seq: bool) {
        let k = def.key_len;
        let key = &op.values[..k];
        let existing = self.unique.get_mut(key);
        if let Some(stored) = existing {
            let mut seq = op.seq;
            if let (Some(mask), Sequence::Column(_) | Sequence::Typed(_)) =
                (&op.present, &def.sequence)
            {
                // Partial update without the sequence column inherits the stored sequence value.
                let seq_supplied = match def.sequence {
                    Sequence::Column(i) => mask[i],
                    _ => !seq.is_null(),
                };
                if !seq_supplied {
                    seq = stored.seq.clone();
                }
            }
            if has_seq && seq < stored.seq {
                return; // strictly smaller sequence: ignored (MoW drops it), deletes too.
            }
            let was_visible = stored.values.is_some();
            if op.delete {
                if was_visible {
                    self.visible -= 1;
                }
                if has_seq {
                    stored.values = None;
                    stored.seq = seq;
                } else {
                    self.unique.remove(key);
                }
                return;
            }
            let new_vals: Box<[Value]> = match (&op.present, &stored.values) {
                (Some(mask), Some(old)) => op
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| if mask[i] { v.clone() } else { old[i].clone() })
                    .collect(),
                _ => op.values,
            };
            if !was_visible {
                self.visible += 1;
            }
            stored.values = Some(new_vals);
            stored.seq = seq;
        } else if op.delete {
            if has_seq {
                self.unique.insert(
                    key.into(),
                    UniqueRow {
                        values: None,
                        seq: op.seq,
                    },
                );
            }
        } else {
            let key: Box<[Value]> = key.into();
            self.unique.insert(
                key,
                UniqueRow {
                    values: Some(op.values),
                    seq: op.seq,
                },
            );
            self.visible += 1;
        }
    }
}

/// Splits a row into its key and value columns, moving the values.
fn split_row(values: Box<[Value]>, k: usize) -> (Box<[Value]>, Box<[Value]>) {
    let mut v = values.into_vec();
    let rest = v.split_off(k);
    (v.into_boxed_slice(), rest.into_boxed_slice())
}

fn aggregate(f: Option<AggFn>, stored: &mut Value, new: &Value) {
    match f {
        Some(AggFn::Replace) | None => *stored = new.clone(),
        Some(AggFn::ReplaceIfNotNull) => {
            if !new.is_null() {
                *stored = new.clone()
            }
        }
        Some(AggFn::Max) => {
            if stored.is_null() || (!new.is_null() && new > stored) {
                *stored = new.clone()
            }
        }
        Some(AggFn::Min) => {
            if stored.is_null() || (!new.is_null() && new < stored) {
                *stored = new.clone()
            }
        }
        Some(AggFn::Sum) => {
            *stored = match (&*stored, new) {
                (Value::Null, v) | (v, Value::Null) => v.clone(),
                (Value::Int(a), Value::Int(b)) => Value::Int(a.saturating_add(*b)),
                (Value::Decimal(a), Value::Decimal(b)) => Value::Decimal(a.saturating_add(*b)),
                (Value::Float(a), Value::Float(b)) => Value::Float(crate::value::F64(a.0 + b.0)),
                (_, v) => v.clone(),
            }
        }
    }
}
