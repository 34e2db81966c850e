//! The `[keys]` section: which keys of the merged table each topic's events refresh.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{KeyType, TableMatch};
use crate::decode::Format;
use crate::error::Problem;
use crate::validation::require_nonempty;

/// The `[keys]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// At least one rule per topic in `kafka.topics`. Required.
    pub rules: Vec<KeyRuleConfig>,
}

/// One `[[keys.rules]]` entry: how a topic's events (or one table's events on it) yield keys of the merged table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRuleConfig {
    /// The topic this rule applies to. Required.
    pub topic: String,
    /// Only the events of this table, as `table` (any schema or database) or `schema.table`, for a topic that
    /// carries several tables (Maxwell's and Canal's default, a Debezium topic router). Events of a table that no
    /// rule of the topic names are ignored, and counted, unless the topic also has a rule without `table`.
    /// Default: every table of the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Message format: `auto`, `debezium`, `debezium-unwrapped`, `maxwell` or `canal`; the same for every rule of a
    /// topic. Default `auto`.
    #[serde(default)]
    pub format: Format,
    /// The field whose value identifies what to refresh, e.g. `["job_id"]`, read from the row after the change
    /// and, when it differs, before it. One field for now: the merge query takes one key column. Required.
    pub fields: Vec<String>,
    /// Type of the fields' values: `integer` or `string`. Default `integer`.
    #[serde(default)]
    pub key_type: KeyType,
    /// SQL mapping the fields' values (`$1`, an array) to keys of the merged table, e.g.
    /// `SELECT id FROM jobs WHERE client_id = ANY($1)`. Default: none (the values are the keys).
    #[serde(default)]
    pub resolve_query: Option<String>,
}

impl KeysConfig {
    /// Checks the `[keys]` section against the topics of `[kafka]` and the key type of `[merge]`.
    pub fn validate(&self, topics: &[String], merge_key_type: KeyType, p: &mut Vec<Problem>) {
        let keys = self;
        if keys.rules.is_empty() {
            p.push(Problem::new(
                "keys.rules",
                "empty; add a [[keys.rules]] entry per topic",
            ));
        }
        // The first rule of each topic, and of each (topic, table).
        let mut first_rule: BTreeMap<&str, usize> = BTreeMap::new();
        let mut first_for_table: BTreeMap<(&str, Option<&str>), usize> = BTreeMap::new();
        for (i, rule) in keys.rules.iter().enumerate() {
            let at = |field: &str| format!("keys.rules[{i}].{field}");
            require_nonempty(&rule.topic, &at("topic"), "name the topic", p);
            if let Some(table) = &rule.table {
                if let Err(why) = TableMatch::parse(table) {
                    p.push(Problem::new(at("table"), why));
                }
            }
            let table_key = rule.table.as_deref().map(str::trim);
            if let Some(j) = first_for_table.get(&(rule.topic.as_str(), table_key)) {
                let what = match table_key {
                    Some(t) => format!("table {t:?} of {:?}", rule.topic),
                    None => format!("{:?} (every table)", rule.topic),
                };
                p.push(Problem::new(
                at(if table_key.is_some() { "table" } else { "topic" }),
                format!("{what} already has a rule (keys.rules[{j}]); keep one rule per topic and table"),
            ));
            } else {
                first_for_table.insert((rule.topic.as_str(), table_key), i);
            }
            if let Some(&j) = first_rule.get(rule.topic.as_str()) {
                let first_format = keys.rules.get(j).map_or(rule.format, |r| r.format);
                if first_format != rule.format {
                    p.push(Problem::new(
                        at("format"),
                        format!(
                            "{} but keys.rules[{j}] reads topic {:?} as {}; a topic has one format",
                            rule.format, rule.topic, first_format
                        ),
                    ));
                }
            } else {
                first_rule.insert(rule.topic.as_str(), i);
            }
            if !rule.topic.is_empty() && !topics.contains(&rule.topic) {
                p.push(Problem::new(
                    at("topic"),
                    format!(
                        "{:?} is not in kafka.topics; add it there or remove the rule",
                        rule.topic
                    ),
                ));
            }
            if rule.fields.is_empty() {
                p.push(Problem::new(at("fields"), "empty; name the key field(s)"));
            } else if rule.fields.len() > 1 {
                // The decoder can extract composite keys, but the merge query binds one array of single keys.
                p.push(Problem::new(
                at("fields"),
                format!(
                    "{} fields; composite keys are not supported yet (the merge query takes one key column): name \
                     one field",
                    rule.fields.len()
                ),
            ));
            }
            for (k, field) in rule.fields.iter().enumerate() {
                require_nonempty(
                    field,
                    &format!("keys.rules[{i}].fields[{k}]"),
                    "name a field",
                    p,
                );
            }
            match &rule.resolve_query {
                Some(query) => {
                    if !query.contains("$1") {
                        p.push(Problem::new(
                            at("resolve_query"),
                            "does not use $1; it receives the fields' values as an array, e.g. \
                         SELECT id FROM jobs WHERE client_id = ANY($1)",
                        ));
                    }
                }
                None => {
                    if rule.key_type != merge_key_type {
                        p.push(Problem::new(
                        at("key_type"),
                        format!(
                            "{} but merge.key_type is {}; the values are keys of the merged table, so the types \
                             must match (or add a resolve_query)",
                            key_type_name(rule.key_type),
                            key_type_name(merge_key_type)
                        ),
                    ));
                    }
                }
            }
        }
        for (i, topic) in topics.iter().enumerate() {
            if !topic.is_empty() && !first_rule.contains_key(topic.as_str()) {
                p.push(Problem::new(
                    format!("kafka.topics[{i}]"),
                    format!(
                        "{topic:?} has no rule in keys.rules; add a [[keys.rules]] entry for it"
                    ),
                ));
            }
        }
    }
}

fn key_type_name(t: KeyType) -> &'static str {
    match t {
        KeyType::Integer => "integer",
        KeyType::String => "string",
    }
}
