//! A clean start on Kafka for the demo: delete its topics and its consumer group, then create the topics again
//! with a fixed partition count, so a consumer subscribes to existing topics (Connect would otherwise auto-create
//! them on its first event, with the broker's default of one partition).

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Why the reset failed.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// A request to the cluster failed.
    #[error("Kafka at {bootstrap}: {what}: {source}")]
    Kafka {
        bootstrap: String,
        what: String,
        /// Boxed: librdkafka's error is large.
        source: Box<KafkaError>,
    },
    /// The broker refused to delete a topic or the group, or to create a topic.
    #[error("Kafka at {bootstrap}: {what}: {code}")]
    Refused {
        bootstrap: String,
        what: String,
        code: RDKafkaErrorCode,
    },
    /// A deleted topic still existed after the timeout.
    #[error("Kafka at {bootstrap}: topic {topic} is still being deleted after {seconds}s")]
    StillDeleting {
        bootstrap: String,
        topic: String,
        seconds: u64,
    },
}

/// What [`reset`] did.
#[derive(Debug, Default)]
pub struct ResetReport {
    /// Topics that existed and were deleted.
    pub deleted_topics: Vec<String>,
    /// Whether the group existed and was deleted.
    pub deleted_group: bool,
    /// Topics created afterwards.
    pub created_topics: Vec<String>,
}

/// Deletes `topics` and `group` (missing ones are fine), then creates `topics` with `partitions` partitions (one
/// replica) unless `partitions` is 0, with the topic config `max.message.bytes` when `max_message_bytes` is set (the
/// broker's default cap is 1 MiB). Fails with `NonEmptyGroup` when a consumer of the group still runs.
pub async fn reset(
    bootstrap: &str,
    topics: &[String],
    group: &str,
    partitions: i32,
    max_message_bytes: Option<u32>,
    timeout: Duration,
) -> Result<ResetReport, ResetError> {
    let kafka = |what: String| {
        let bootstrap = bootstrap.to_string();
        move |source| ResetError::Kafka {
            bootstrap,
            what,
            source: Box::new(source),
        }
    };
    let refused = |what: String, code| ResetError::Refused {
        bootstrap: bootstrap.to_string(),
        what,
        code,
    };
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(kafka("creating an admin client".into()))?;
    let opts = AdminOptions::new().operation_timeout(Some(timeout));
    let mut report = ResetReport::default();

    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    for r in admin
        .delete_topics(&names, &opts)
        .await
        .map_err(kafka("deleting the topics".into()))?
    {
        match r {
            Ok(t) => report.deleted_topics.push(t),
            Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((t, code)) => return Err(refused(format!("deleting topic {t}"), code)),
        }
    }
    // A broker that never had a group has no __consumer_offsets topic yet: the first request creates it and is
    // answered NotCoordinator / CoordinatorNotAvailable meanwhile, so those are retried.
    let deadline = Instant::now() + timeout;
    loop {
        let results = admin
            .delete_groups(&[group], &opts)
            .await
            .map_err(kafka(format!("deleting group {group}")))?;
        let mut retry = false;
        for r in results {
            match r {
                Ok(_) => report.deleted_group = true,
                Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
                Err((
                    _,
                    RDKafkaErrorCode::NotCoordinator
                    | RDKafkaErrorCode::CoordinatorNotAvailable
                    | RDKafkaErrorCode::CoordinatorLoadInProgress,
                )) if Instant::now() < deadline => retry = true,
                Err((g, code)) => {
                    return Err(refused(
                        format!("deleting group {g} (is a consumer of it still running?)"),
                        code,
                    ))
                }
            }
        }
        if !retry {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if partitions == 0 {
        return Ok(report);
    }
    // Deletion finishes in the background; creating a topic that is still being deleted fails with
    // TopicAlreadyExists, so retry until the deadline.
    let cap = max_message_bytes.map(|n| n.to_string());
    let new: Vec<NewTopic> = names
        .iter()
        .map(|t| {
            with_cap(
                NewTopic::new(t, partitions, TopicReplication::Fixed(1)),
                &cap,
            )
        })
        .collect();
    let mut pending: Vec<usize> = (0..new.len()).collect();
    loop {
        let batch: Vec<NewTopic> = pending
            .iter()
            .map(|&i| with_cap(clone_new(&new[i]), &cap))
            .collect();
        let results = admin
            .create_topics(&batch, &opts)
            .await
            .map_err(kafka("creating the topics".into()))?;
        let mut again = Vec::new();
        for (r, &i) in results.into_iter().zip(&pending) {
            match r {
                Ok(t) => report.created_topics.push(t),
                Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    if !report.deleted_topics.contains(&t) {
                        // It was not ours to delete a moment ago, so it is not being deleted: someone made it.
                        report.created_topics.push(t);
                    } else if Instant::now() >= deadline {
                        return Err(ResetError::StillDeleting {
                            bootstrap: bootstrap.to_string(),
                            topic: t,
                            seconds: timeout.as_secs(),
                        });
                    } else {
                        again.push(i);
                    }
                }
                Err((t, code)) => return Err(refused(format!("creating topic {t}"), code)),
            }
        }
        if again.is_empty() {
            return Ok(report);
        }
        pending = again;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn with_cap<'a>(t: NewTopic<'a>, cap: &'a Option<String>) -> NewTopic<'a> {
    match cap {
        Some(n) => t.set("max.message.bytes", n),
        None => t,
    }
}

fn clone_new<'a>(t: &NewTopic<'a>) -> NewTopic<'a> {
    NewTopic::new(t.name, t.num_partitions, TopicReplication::Fixed(1))
}
