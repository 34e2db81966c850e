use std::collections::BTreeMap;
use std::env::VarError;

use secrecy::ExposeSecret;

use super::*;
use crate::decode::Format;
use crate::keys::KeyType;
use crate::merge::config::{
    default_chunk_size, default_connect_timeout, default_pool_size, default_statement_timeout,
};
use crate::source::config::default_revoke_timeout;

/// The environment every test sees: one password.
fn env(name: &str) -> Result<String, VarError> {
    match name {
        "PG_PW" | "CDC2DORIS_PG_PASSWORD" => Ok("hunter2".to_string()),
        "KAFKA_PW" => Ok("kafka-s3cret".to_string()),
        _ => Err(VarError::NotPresent),
    }
}

/// A small valid configuration the mistake tests start from.
const MINIMAL: &str = r#"
[kafka]
bootstrap_servers = ["kafka:9092"]
group_id = "g"
topics = ["t1", "t2", "t3"]

[postgres]
url = "postgres://app@db:5432/app"
password_env = "PG_PW"

[keys]
[[keys.rules]]
topic = "t1"
fields = ["id"]
[[keys.rules]]
topic = "t2"
fields = ["a_id"]
[[keys.rules]]
topic = "t3"
fields = ["client_id"]
resolve_query = "SELECT id FROM a WHERE client_id = ANY($1)"

[merge]
query_file = "merge.sql"
key_column = "id"

[doris]
fe_urls = ["http://fe:8030"]
database = "d"
table = "t"
sequence_column = "v"

[dead_letter]
path = "dl.jsonl"
"#;

/// Writes `text` as `cdc.toml` next to a `merge.sql`, loads it, and returns the config or the problems as
/// `path: message` lines.
fn load_text(text: &str) -> Result<Config, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("merge.sql"),
        "SELECT id FROM a WHERE id = ANY($1)",
    )
    .unwrap();
    let path = dir.path().join("cdc.toml");
    std::fs::write(&path, text).unwrap();
    load_with_env(&path, &env).map_err(|e| e.problems().iter().map(|p| p.to_string()).collect())
}

/// Loads MINIMAL with one replacement, and returns the problems.
fn problems_with(from: &str, to: &str) -> Vec<String> {
    assert!(MINIMAL.contains(from), "test bug: {from:?} not in MINIMAL");
    match load_text(&MINIMAL.replacen(from, to, 1)) {
        Ok(_) => panic!("{from:?} → {to:?} was accepted"),
        Err(problems) => problems,
    }
}

fn assert_problem(problems: &[String], expected: &str) {
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "no problem contains {expected:?}: {problems:#?}"
    );
}

#[test]
fn minimal_config_is_valid() {
    let config = load_text(MINIMAL).unwrap();
    assert_eq!(
        config
            .postgres_password
            .as_ref()
            .map(|s| s.expose_secret().to_string()),
        Some("hunter2".to_string())
    );
    assert!(config.merge_query.contains("$1"));
    assert!(config.file.merge.query_file.is_absolute());
    assert!(matches!(config.dead_letter, DeadLetterTarget::File(ref p) if p.is_absolute()));
    assert_eq!(config.file.batch, BatchConfig::default());
    assert_eq!(config.file.batch.max_in_flight, 2);
}

#[test]
fn unknown_key_names_its_path() {
    let p = problems_with("[dead_letter]", "[batch]\nmax_keyz = 3\n\n[dead_letter]");
    assert_problem(&p, "batch.max_keyz: unknown field `max_keyz`");
    let p = problems_with(
        "[[keys.rules]]\ntopic = \"t1\"",
        "[[keys.rules]]\ntopic = \"t1\"\nfeilds = []",
    );
    assert_problem(&p, "keys.rules[0].feilds: unknown field `feilds`");
    let p = problems_with("[dead_letter]", "[extra]\n\n[dead_letter]");
    assert_problem(&p, "extra: unknown section");
}

#[test]
fn wrong_type_names_its_path() {
    let p = problems_with(
        "[dead_letter]",
        "[batch]\nmax_keys = \"x\"\n\n[dead_letter]",
    );
    assert_eq!(
        p,
        vec!["batch.max_keys: invalid type: string \"x\", expected usize".to_string()]
    );
    let p = problems_with(
        "key_column = \"id\"",
        "key_column = \"id\"\nchunk_size = -1",
    );
    assert_problem(&p, "merge.chunk_size: invalid value: integer `-1`");
    let p = problems_with(
        "fields = [\"id\"]",
        "fields = [\"id\"]\nkey_type = \"uuid\"",
    );
    assert_problem(&p, "keys.rules[0].key_type: unknown variant `uuid`");
}

#[test]
fn missing_required_field_or_section() {
    let p = problems_with("group_id = \"g\"\n", "");
    assert_problem(&p, "kafka: missing field `group_id`");
    let p = problems_with(
        "[merge]\nquery_file = \"merge.sql\"\nkey_column = \"id\"\n",
        "",
    );
    assert_problem(&p, "merge: missing section; add a [merge] table");
}

#[test]
fn bad_duration() {
    let p = problems_with(
        "[dead_letter]",
        "[batch]\nmax_wait = \"5 parsecs\"\n\n[dead_letter]",
    );
    assert_problem(&p, "batch.max_wait: ");
    let p = problems_with("[dead_letter]", "[batch]\nmax_wait = 5\n\n[dead_letter]");
    assert_problem(&p, "batch.max_wait: invalid type: integer `5`");
    let p = problems_with(
        "[dead_letter]",
        "[log]\nprogress_interval = \"0s\"\n\n[dead_letter]",
    );
    assert_problem(&p, "log.progress_interval: 0; give a positive duration");
}

#[test]
fn bad_urls() {
    let p = problems_with("postgres://app@db:5432/app", "mysql://app@db/app");
    assert_problem(&p, "postgres.url: not a postgres:// or postgresql:// URL");
    let p = problems_with(
        "postgres://app@db:5432/app",
        "postgres://app@db:notaport/app",
    );
    assert_problem(&p, "postgres.url: cannot be parsed");
    let p = problems_with("postgres://app@db:5432/app", "postgres://db:5432/app");
    assert_problem(&p, "postgres.url: names no user");
    let p = problems_with(
        "postgres://app@db:5432/app",
        "postgres://app@db:5432/app?sslmode=require",
    );
    assert_problem(
        &p,
        "postgres.url: sets sslmode; remove it and set postgres.tls_mode",
    );
    let p = problems_with("\"http://fe:8030\"", "\"http://fe:8030\", \"fe:8030 x\"");
    assert_problem(&p, "doris.fe_urls[1]: \"fe:8030 x\" is not");
    let p = problems_with("\"kafka:9092\"", "\"kafka\"");
    assert_problem(
        &p,
        "kafka.bootstrap_servers[0]: \"kafka\" is not \"host:port\"",
    );
}

#[test]
fn embedded_password_is_refused_without_echoing_it() {
    let p = problems_with(
        "postgres://app@db:5432/app",
        "postgres://app:topsecret@db:5432/app",
    );
    assert_problem(
        &p,
        "postgres.url: embeds a password; remove it from the URL",
    );
    assert!(!p.iter().any(|l| l.contains("topsecret")), "{p:#?}");
    let p = problems_with("http://fe:8030", "http://root:topsecret@fe:8030");
    assert_problem(&p, "doris.fe_urls[0]: embeds credentials");
    assert!(!p.iter().any(|l| l.contains("topsecret")), "{p:#?}");
}

#[test]
fn secrets() {
    let p = problems_with("password_env = \"PG_PW\"", "password_env = \"NOT_SET\"");
    assert_eq!(
        p,
        vec![
            "postgres.password_env: environment variable NOT_SET is not set; export it, or remove password_env"
                .to_string()
        ]
    );
    let p = problems_with(
        "password_env = \"PG_PW\"",
        "password_env = \"PG_PW\"\npassword_file = \"pw\"",
    );
    assert_problem(
        &p,
        "postgres.password_env: both password_env and password_file are set",
    );
    let p = problems_with(
        "sequence_column = \"v\"",
        "sequence_column = \"v\"\npassword_file = \"nope\"",
    );
    assert_problem(&p, "doris.password_file: ");
    assert_problem(&p, "nope: No such file or directory");
    assert!(!p.iter().any(|l| l.contains("hunter2")));
}

#[test]
fn password_file_resolves_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("merge.sql"), "SELECT $1").unwrap();
    std::fs::write(dir.path().join("doris.pw"), "d0ris\n").unwrap();
    let text = MINIMAL.replace(
        "sequence_column = \"v\"",
        "sequence_column = \"v\"\npassword_file = \"doris.pw\"",
    );
    let path = dir.path().join("cdc.toml");
    std::fs::write(&path, text).unwrap();
    let config = load_with_env(&path, &env).unwrap();
    assert_eq!(
        config.doris_password.unwrap().expose_secret(),
        "d0ris",
        "one trailing newline trimmed"
    );
    assert_eq!(
        config.file.doris.password_file,
        Some(dir.path().join("doris.pw"))
    );
}

#[test]
fn kafka_properties() {
    let props = "[kafka.properties]\n\"enable.auto.commit\" = true\n\"group.id\" = \"x\"\n\"sasl.password\" = \"pw\"\n\"fetch.min.bytes\" = 1\n\n[postgres]";
    let p = problems_with("[postgres]", props);
    assert_problem(
        &p,
        "kafka.properties.\"enable.auto.commit\": owned by cdc2doris (cdc2doris commits offsets itself",
    );
    assert_problem(
        &p,
        "kafka.properties.\"group.id\": owned by cdc2doris (set kafka.group_id instead)",
    );
    assert_problem(
        &p,
        "kafka.properties.\"sasl.password\": a secret does not belong in the config file",
    );
    assert_eq!(p.len(), 3, "{p:#?}");

    let ok = MINIMAL.replace(
        "[postgres]",
        "[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"partition.assignment.strategy\" = \"range\"\n\
         \"session.timeout.ms\" = 45000\n\n[kafka.properties_from_env]\n\"sasl.password\" = \"KAFKA_PW\"\n\n[postgres]",
    );
    let config = load_text(&ok).unwrap();
    let props = config.file.kafka.consumer_properties();
    assert_eq!(props["enable.auto.commit"], "false");
    assert_eq!(props["enable.auto.offset.store"], "false");
    assert_eq!(props["enable.partition.eof"], "false");
    assert_eq!(props["group.id"], "g");
    assert_eq!(props["bootstrap.servers"], "kafka:9092");
    assert_eq!(props["session.timeout.ms"], "45000");
    assert_eq!(
        props["partition.assignment.strategy"], "range",
        "defaults can be overridden"
    );
    assert_eq!(props["auto.offset.reset"], "earliest");
    assert!(!props.contains_key("sasl.password"));
    assert_eq!(config.kafka_secret_properties.len(), 1);
    assert_eq!(
        config.kafka_secret_properties[0].1.expose_secret(),
        "kafka-s3cret"
    );

    let p = problems_with(
        "[postgres]",
        "[kafka.properties_from_env]\n\"sasl.password\" = \"UNSET_VAR\"\n\n[postgres]",
    );
    assert_problem(
        &p,
        "kafka.properties_from_env.\"sasl.password\": environment variable UNSET_VAR is not set",
    );
}

#[test]
fn key_rules() {
    let p = problems_with("fields = [\"a_id\"]", "fields = []");
    assert_eq!(
        p,
        vec!["keys.rules[1].fields: empty; name the key field(s)".to_string()]
    );
    let p = problems_with(
        "fields = [\"client_id\"]",
        "fields = [\"client_id\", \"x\"]",
    );
    assert_problem(
        &p,
        "keys.rules[2].fields: 2 fields; composite keys are not supported yet",
    );
    let p = problems_with("WHERE client_id = ANY($1)", "WHERE client_id = 7");
    assert_problem(&p, "keys.rules[2].resolve_query: does not use $1");
    let p = problems_with("topic = \"t2\"", "topic = \"t1\"");
    assert_problem(
        &p,
        "keys.rules[1].topic: \"t1\" (every table) already has a rule (keys.rules[0]); keep one rule per topic and \
         table",
    );
    assert_problem(&p, "kafka.topics[1]: \"t2\" has no rule in keys.rules");
    // One topic, several tables: one rule per table, plus at most one for the other tables, one format.
    let config = load_text(&MINIMAL.replacen(
        "topic = \"t2\"",
        "topic = \"t1\"\ntable = \"public.a\"\nfields = [\"a_id\"]\n[[keys.rules]]\ntopic = \"t2\"",
        1,
    ))
    .unwrap();
    assert_eq!(config.file.keys.rules[1].table.as_deref(), Some("public.a"));
    let p = problems_with(
        "topic = \"t2\"",
        "topic = \"t1\"\ntable = \"a\"\nformat = \"maxwell\"\nfields = [\"x\"]\n[[keys.rules]]\ntopic = \"t1\"\n\
         table = \" a\"",
    );
    assert_problem(
        &p,
        "keys.rules[1].format: maxwell but keys.rules[0] reads topic \"t1\" as auto; a topic has one format",
    );
    assert_problem(
        &p,
        "keys.rules[2].table: table \"a\" of \"t1\" already has a rule (keys.rules[1])",
    );
    let p = problems_with("topic = \"t2\"", "topic = \"t2\"\ntable = \"a.b.c\"");
    assert_problem(
        &p,
        "keys.rules[1].table: \"a.b.c\" is not `table` or `schema.table` (unquoted names, one dot at most)",
    );
    let p = problems_with("topic = \"t3\"", "topic = \"t4\"");
    assert_problem(&p, "keys.rules[2].topic: \"t4\" is not in kafka.topics");
    let p = problems_with(
        "fields = [\"id\"]",
        "fields = [\"id\"]\nkey_type = \"string\"",
    );
    assert_problem(
        &p,
        "keys.rules[0].key_type: string but merge.key_type is integer",
    );
}

#[test]
fn merge_query_file() {
    let p = problems_with(
        "query_file = \"merge.sql\"",
        "query_file = \"/nonexistent/merge.sql\"",
    );
    assert_eq!(
        p,
        vec![
            "merge.query_file: /nonexistent/merge.sql: No such file or directory (os error 2)"
                .to_string()
        ]
    );
    let p = problems_with("key_column = \"id\"", "key_column = \"\"\nchunk_size = 0");
    assert_problem(&p, "merge.key_column: empty");
    assert_problem(&p, "merge.chunk_size: 0; must be at least 1");
}

#[test]
fn dead_letter_destination() {
    let p = problems_with("path = \"dl.jsonl\"", "");
    assert_problem(&p, "dead_letter: neither topic nor path is set");
    let p = problems_with(
        "path = \"dl.jsonl\"",
        "path = \"dl.jsonl\"\ntopic = \"dlq\"",
    );
    assert_problem(&p, "dead_letter: both topic and path are set");
    let p = problems_with("path = \"dl.jsonl\"", "path = \"no/such/dir/dl.jsonl\"");
    assert_problem(&p, "dead_letter.path: ");
    assert_problem(&p, "create the directory");
    let config = load_text(&MINIMAL.replace("path = \"dl.jsonl\"", "topic = \"dlq\"")).unwrap();
    let DeadLetterTarget::Kafka {
        topic, properties, ..
    } = &config.dead_letter
    else {
        panic!("{:?}", config.dead_letter);
    };
    assert_eq!(topic, "dlq");
    assert!(
        properties.iter().any(|(k, _)| k == "bootstrap.servers"),
        "{properties:?}"
    );
}

#[test]
fn several_mistakes_are_reported_at_once() {
    // Semantic mistakes across sections: all of them in one error.
    let text = MINIMAL
        .replacen("fields = [\"a_id\"]", "fields = []", 1)
        .replacen(
            "query_file = \"merge.sql\"",
            "query_file = \"missing.sql\"",
            1,
        )
        .replacen(
            "postgres://app@db:5432/app",
            "postgres://app:pw@db:5432/app",
            1,
        )
        .replacen("password_env = \"PG_PW\"", "password_env = \"NOT_SET\"", 1)
        .replacen("fe_urls = [\"http://fe:8030\"]", "fe_urls = []", 1);
    let p = load_text(&text).unwrap_err();
    assert_problem(&p, "keys.rules[1].fields: empty");
    assert_problem(&p, "merge.query_file: ");
    assert_problem(&p, "postgres.url: embeds a password");
    assert_problem(&p, "postgres.password_env: environment variable NOT_SET");
    assert_problem(&p, "doris.fe_urls: empty");
    assert_eq!(p.len(), 5, "{p:#?}");

    // Shape mistakes in different sections are reported together too.
    let text = MINIMAL
        .replacen("group_id = \"g\"", "group_id = 7", 1)
        .replacen(
            "[dead_letter]",
            "[batch]\nmax_keys = \"x\"\n\n[dead_letter]\ncolour = 1",
            1,
        );
    let p = load_text(&text).unwrap_err();
    assert_problem(
        &p,
        "kafka.group_id: invalid type: integer `7`, expected a string",
    );
    assert_problem(&p, "batch.max_keys: invalid type");
    assert_problem(&p, "dead_letter.colour: unknown field `colour`");
    assert_eq!(p.len(), 3, "{p:#?}");
}

#[test]
fn syntax_error_gives_line() {
    let p = load_text("[kafka\nbootstrap_servers = 1").unwrap_err();
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0],
        "(syntax): line 1, column 7: unclosed table, expected `]`"
    );
}

// ---- print-default-config, docs and the reference workload ----

#[test]
fn default_config_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("merge.sql"),
        "SELECT id FROM orders WHERE id = ANY($1)",
    )
    .unwrap();
    let path = dir.path().join("cdc2doris.toml");
    std::fs::write(&path, DEFAULT_CONFIG).unwrap();
    let no_env = |_: &str| Err(VarError::NotPresent);
    let config = load_with_env(&path, &no_env).unwrap();
    assert!(config.postgres_password.is_none());
    assert!(config.doris_password.is_none());
}

/// Every optional field in the printed config shows its default value.
#[test]
fn default_config_shows_the_defaults() {
    let file = parse(DEFAULT_CONFIG).unwrap();
    assert_eq!(file.batch, BatchConfig::default());
    assert_eq!(file.admin, AdminConfig::default());
    assert_eq!(file.log, LogConfig::default());
    assert!(file.kafka.properties.is_empty());
    assert!(file.kafka.properties_from_env.is_empty());
    assert_eq!(file.kafka.revoke_timeout, default_revoke_timeout());
    let pg = &file.postgres;
    assert_eq!(pg.pool_size, default_pool_size());
    assert_eq!(pg.connect_timeout, default_connect_timeout());
    assert_eq!(pg.statement_timeout, default_statement_timeout());
    assert_eq!(pg.tls_mode, TlsMode::default());
    assert_eq!(
        (&pg.password_env, &pg.password_file, &pg.tls_ca_file),
        (&None, &None, &None)
    );
    assert_eq!(file.keys.rules[0].format, Format::default());
    assert_eq!(file.keys.rules[0].key_type, KeyType::default());
    assert_eq!(file.keys.rules[0].resolve_query, None);
    assert_eq!(file.merge.key_type, KeyType::default());
    assert_eq!(file.merge.chunk_size, default_chunk_size());
    assert_eq!(file.dead_letter.topic, None);
    // The [doris] defaults live in the sink's struct: compare with a section that sets only the required fields.
    let minimal_doris: DorisConfig = toml::from_str(
        "fe_urls = [\"http://127.0.0.1:8030\"]\ndatabase = \"app\"\ntable = \"orders_merged\"\n\
         sequence_column = \"source_version\"",
    )
    .unwrap();
    assert_eq!(file.doris, minimal_doris);
}

/// Field docs per struct, from Rust source: struct name → [(field, doc lines)].
fn rust_field_docs(src: &str) -> BTreeMap<String, Vec<(String, Vec<String>)>> {
    let mut out: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut docs: Vec<String> = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if let Some(name) = t
            .strip_prefix("pub struct ")
            .and_then(|r| r.strip_suffix(" {"))
        {
            current = Some(name.to_string());
            out.insert(name.to_string(), Vec::new());
            docs.clear();
            continue;
        }
        let Some(name) = &current else { continue };
        if t == "}" {
            current = None;
        } else if let Some(d) = t.strip_prefix("///") {
            docs.push(d.strip_prefix(' ').unwrap_or(d).to_string());
        } else if t.starts_with("#[") {
        } else if let Some((field, _)) = t.strip_prefix("pub ").and_then(|r| r.split_once(':')) {
            if let Some(fields) = out.get_mut(name) {
                fields.push((field.to_string(), std::mem::take(&mut docs)));
            }
        } else {
            docs.clear();
        }
    }
    out
}

/// Comments above each key or table header of the template: (table path, key) → comment lines. Commented-out
/// `# key = value` lines count as keys.
fn template_docs(template: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut out = BTreeMap::new();
    let mut table = String::new();
    let mut comments: Vec<String> = Vec::new();
    let bare = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    for line in template.lines() {
        let l = line.trim();
        if l.is_empty() {
            comments.clear();
            continue;
        }
        let header = l
            .strip_prefix("[[")
            .and_then(|h| h.strip_suffix("]]"))
            .or_else(|| l.strip_prefix('[').and_then(|h| h.strip_suffix(']')));
        if let Some(h) = header {
            let (parent, key) = h.rsplit_once('.').unwrap_or(("", h));
            out.insert(
                (parent.to_string(), key.to_string()),
                std::mem::take(&mut comments),
            );
            table = h.to_string();
            continue;
        }
        let body = l.strip_prefix("# ").unwrap_or(l);
        if let Some((k, _)) = body.split_once(" = ") {
            if bare(k) {
                out.insert(
                    (table.clone(), k.to_string()),
                    std::mem::take(&mut comments),
                );
                continue;
            }
        }
        if let Some(c) = l.strip_prefix('#') {
            comments.push(c.strip_prefix(' ').unwrap_or(c).to_string());
        }
    }
    out
}

/// The printed config's comments are the structs' doc comments, field for field, and every field is shown.
#[test]
fn default_config_comments_are_the_field_docs() {
    // Each section is defined beside the stage that uses it.
    let mut docs = rust_field_docs(include_str!("schema.rs"));
    for source in [
        include_str!("../source/config.rs"),
        include_str!("../merge/config.rs"),
        include_str!("../keys/config.rs"),
        include_str!("../sink/doris/config.rs"),
        include_str!("../batch.rs"),
        include_str!("../dead_letter.rs"),
        include_str!("../admin.rs"),
    ] {
        docs.extend(rust_field_docs(source));
    }
    let template = template_docs(DEFAULT_CONFIG);
    let sections = [
        ("ConfigFile", ""),
        ("KafkaConfig", "kafka"),
        ("PostgresConfig", "postgres"),
        ("KeysConfig", "keys"),
        ("KeyRuleConfig", "keys.rules"),
        ("MergeConfig", "merge"),
        ("DorisConfig", "doris"),
        ("BatchConfig", "batch"),
        ("DeadLetterConfig", "dead_letter"),
        ("AdminConfig", "admin"),
        ("LogConfig", "log"),
    ];
    for (name, section) in sections {
        let fields = docs
            .get(name)
            .unwrap_or_else(|| panic!("struct {name} not found"));
        assert!(!fields.is_empty(), "struct {name} has no fields");
        for (field, lines) in fields {
            assert!(!lines.is_empty(), "{name}.{field} has no doc comment");
            let key = (section.to_string(), field.clone());
            let shown = template
                .get(&key)
                .unwrap_or_else(|| panic!("default-config.toml lacks {section}.{field}"));
            assert_eq!(
                shown, lines,
                "comment of {section}.{field} differs from {name}.{field}'s doc"
            );
        }
        let in_template = template.keys().filter(|(t, _)| t == section).count();
        assert_eq!(
            in_template,
            fields.len(),
            "[{section}] has keys that {name} lacks"
        );
    }
}

#[test]
fn configuration_reference_contains_the_default_config() {
    let doc = include_str!("../../../../docs/configuration.md");
    assert!(
        doc.contains(DEFAULT_CONFIG),
        "docs/configuration.md must contain default-config.toml verbatim; regenerate it with \
         `cdc2doris print-default-config`"
    );
}

#[test]
fn job_analytics_example_is_valid() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/job-analytics/pipeline.toml");
    let config = load_with_env(&path, &env).unwrap_or_else(|e| panic!("{e}"));
    let file = &config.file;
    assert_eq!(file.kafka.topics.len(), 4);
    assert_eq!(file.merge.key_column, "job_id");
    assert_eq!(file.doris.table, "merged_job_data");
    assert_eq!(file.doris.sequence_column, "source_version");
    let resolve = file
        .keys
        .rules
        .iter()
        .find(|r| r.topic == "enhanced_job_server_v2.public.clients_to_exclude")
        .and_then(|r| r.resolve_query.as_deref());
    assert_eq!(
        resolve,
        Some("SELECT id FROM jobs WHERE client_id = ANY($1)")
    );
    assert!(config.merge_query.contains("= ANY($1::bigint[])"));
    assert_eq!(
        config
            .postgres_password
            .map(|s| s.expose_secret().to_string()),
        Some("hunter2".to_string())
    );
    assert!(file.merge.query_file.is_absolute());
    // A relative config path works too (cargo runs tests in the crate's directory).
    let relative = Path::new("../../examples/job-analytics/pipeline.toml");
    let config = load_with_env(relative, &env).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.file.merge.query_file.is_absolute());
    // Without the password variable, the error names it.
    let no_env = |_: &str| Err(VarError::NotPresent);
    let err = load_with_env(&path, &no_env).unwrap_err();
    assert!(err.to_string().contains("CDC2DORIS_PG_PASSWORD"), "{err}");
}

/// The merge query's output columns are the Doris table's columns, minus the two the service adds.
#[test]
fn job_analytics_merge_columns_match_the_doris_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/job-analytics");
    let doris = std::fs::read_to_string(dir.join("doris.sql")).unwrap();
    let merge = std::fs::read_to_string(dir.join("merge.sql")).unwrap();
    let table = doris.split_once("merged_job_data (").unwrap().1;
    let table = table.split_once("\n)").unwrap().0;
    let mut doris_columns: Vec<&str> = table
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "source_version")
        .collect();
    let select = merge
        .split_once("SELECT")
        .unwrap()
        .1
        .split_once("\nFROM jobs")
        .unwrap()
        .0;
    let mut merge_columns: Vec<&str> = select
        .lines()
        .filter_map(|l| l.split(" AS ").nth(1))
        .map(|c| c.trim().trim_end_matches(','))
        .collect();
    assert_eq!(merge_columns.len(), 19);
    doris_columns.sort_unstable();
    merge_columns.sort_unstable();
    assert_eq!(merge_columns, doris_columns);
}

#[test]
fn property_value_of_wrong_type() {
    let p = problems_with("[postgres]", "[kafka.properties]\nx = [1]\n\n[postgres]");
    assert_eq!(
        p,
        vec!["kafka.properties.x: expected a string, an integer or a boolean".to_string()]
    );
}
