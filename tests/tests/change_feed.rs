//! The change feed across replicas (two backend processes on one private PostgreSQL server): a change
//! made through one replica's API reaches a progress stream open on the other, the leader acts on a
//! signed stop posted to the follower, and after the PostgreSQL server restarts, a stream opened before
//! still hears the changes made after.

use std::time::Duration;

use alloy::signers::SignerSync;
use anyhow::{Context, Result, bail};
use conference_backend::domain::stop::SignedStop;
use conference_e2e::{Database, Stack, TIME_TRAVEL};
use serde_json::{Value, json};

const STEP: Duration = Duration::from_secs(60);
/// How long a change may take to reach a stream before the test gives up (a bound against hanging,
/// not a measurement: `backend-bench streams` measures).
const GENEROUS: Duration = Duration::from_secs(30);

/// A progress stream (`GET /api/agreements/{id}/events`), read event by event.
struct ProgressStream {
    response: reqwest::Response,
    buffer: String,
}

impl ProgressStream {
    async fn open(api: &str, id: u64) -> Result<Self> {
        let response = reqwest::get(format!("{api}/api/agreements/{id}/events")).await?.error_for_status()?;
        Ok(Self { response, buffer: String::new() })
    }

    /// The first `progress` record from now on that satisfies `done`.
    async fn wait_for(&mut self, what: &str, done: impl Fn(&Value) -> bool) -> Result<Value> {
        let mut last = None;
        let found = tokio::time::timeout(GENEROUS, async {
            loop {
                while let Some(end) = self.buffer.find("\n\n") {
                    let event: String = self.buffer.drain(..end + 2).collect();
                    let (mut name, mut data) = ("", String::new());
                    for line in event.lines() {
                        if let Some(value) = line.strip_prefix("event: ") {
                            name = value;
                        } else if let Some(value) = line.strip_prefix("data: ") {
                            data.push_str(value);
                        }
                    }
                    if name == "progress" {
                        let record: Value = serde_json::from_str(&data).context("a progress event's data")?;
                        if done(&record) {
                            return Ok(record);
                        }
                        last = Some(record);
                    }
                }
                let chunk = self.response.chunk().await?.context("the stream ended")?;
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await;
        match found {
            Ok(found) => found,
            Err(_) => bail!("the stream showed no {what} within {GENEROUS:?}; its last record: {last:?}"),
        }
    }
}

/// The customer's registration of `count` participants in the EU, in HD.
fn registration(count: usize) -> Value {
    let participants: Vec<Value> = (0..count)
        .map(|n| json!({ "address": format!("0x{:040x}", 0xfeed_0000u64 + n as u64), "region": 0 }))
        .collect();
    json!({ "participants": participants, "quality": "hd" })
}

fn participants(record: &Value) -> Option<u64> {
    record["participants"]["count"].as_u64()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_through_one_replica_reaches_a_stream_on_the_other_and_the_leader_acts_on_it() -> Result<()> {
    let mut stack = Stack::start_on("feed-replicas", Database::Postgres).await?;
    // Slots of an hour: each conference's first probe is its whole evidence, so the settlement below
    // needs no more probes.
    stack.restart_with(None, TIME_TRAVEL).await?;
    stack.wait_leading(0, STEP).await?;
    let follower = stack.add_replica().await?;
    let (id, _) = stack.customer_signs().await?;
    let active = stack.wait_status(id, "active", STEP).await?;
    stack.wait_for(id, "a probe", STEP, |r| r["conference"]["probes"].as_u64() >= Some(1)).await?;
    let started_at = active["startedAt"].as_u64().context("startedAt")?;

    // Participants registered through the leader's API reach a stream open on the follower...
    let mut on_follower = ProgressStream::open(&stack.api_of(follower), id).await?;
    on_follower.wait_for("the agreement", |r| r["status"] == "active").await?;
    let cookie = stack.sign_in_customer().await?;
    let path = format!("/api/agreements/{id}/participants");
    let (status, answer) = stack.post_as(&cookie, &path, &registration(2)).await?;
    assert_eq!(status, 200, "{answer}");
    on_follower.wait_for("two participants", |r| participants(r) == Some(2)).await?;

    // ...and those registered through the follower's reach a stream open on the leader.
    let mut on_leader = ProgressStream::open(&stack.api_of(0), id).await?;
    on_leader.wait_for("the agreement", |r| r["status"] == "active").await?;
    stack.read_from(follower);
    let (status, answer) = stack.post_as(&cookie, &path, &registration(3)).await?;
    assert_eq!(status, 200, "{answer}");
    on_leader.wait_for("three participants", |r| participants(r) == Some(3)).await?;

    // A stop the customer signs, posted to the follower: the leader hears it on the feed and settles;
    // the follower's stream shows each step.
    stack.set_next_block_time(started_at + 400).await?;
    stack.mine().await?;
    let stop = SignedStop {
        started_at,
        stopped_at: started_at + 300,
        deadline: started_at + 3600,
        signature: Default::default(),
    };
    let digest = stop.digest(id, 1, stack.devnet.anvil.chain_id(), stack.devnet.escrow);
    let signature = stack.devnet.customer.sign_hash_sync(&digest)?;
    let body = json!({
        "stoppedAt": stop.stopped_at,
        "deadline": stop.deadline,
        "signature": alloy::hex::encode_prefixed(signature.as_bytes()),
    });
    let (status, answer) = stack.post(&format!("/api/agreements/{id}/stop"), &body).await?;
    assert_eq!(status, 202, "{answer}");
    let settled = tokio::time::timeout(STEP, on_follower.wait_for("the settlement", |r| r["status"] == "settled"))
        .await
        .context("no settlement")??;
    conference_e2e::check_settlement(&settled)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn after_postgresql_restarts_a_stream_on_another_replica_still_hears_changes() -> Result<()> {
    let mut stack = Stack::start_on("feed-restart", Database::Postgres).await?;
    stack.wait_leading(0, STEP).await?;
    let follower = stack.add_replica().await?;
    let (id, _) = stack.customer_signs().await?;
    stack.wait_status(id, "active", STEP).await?;
    let cookie = stack.sign_in_customer().await?;
    let mut on_follower = ProgressStream::open(&stack.api_of(follower), id).await?;
    on_follower.wait_for("the agreement", |r| r["status"] == "active").await?;

    let postgres = stack.postgres().context("a PostgreSQL stack")?;
    postgres.stop()?;
    postgres.start_again()?;

    // The leader's API writes once its pool has connected again.
    let path = format!("/api/agreements/{id}/participants");
    let started = std::time::Instant::now();
    loop {
        match stack.post_as(&cookie, &path, &registration(2)).await {
            Ok((200, _)) => break,
            Ok((status, answer)) if started.elapsed() > STEP => bail!("registration: {status} {answer}"),
            Err(err) if started.elapsed() > STEP => bail!("registration: {err}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    on_follower.wait_for("two participants", |r| participants(r) == Some(2)).await?;
    let log = stack.replica_log(follower);
    assert!(log.contains("change feed: listening again"), "the follower's listener connected again:\n{log}");
    Ok(())
}
