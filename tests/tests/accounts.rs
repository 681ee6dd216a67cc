//! Customer accounts end to end, on anvil with the real backend: one deposit opens many conferences by
//! signed orders (no customer transaction per conference), the operator opens, activates and settles them
//! in batches, and every balance is checked to the wei: the account (free, locked), each provider's
//! earnings, the owner's credit, the wallet. Conferences run on the no-op orchestrator (what is tested here
//! is money and batching, not rooms), with hour-long availability slots so that the clock can jump.

use std::time::{Duration, Instant};

use alloy::{
    primitives::U256,
    providers::Provider,
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolEvent,
};
use anyhow::{Context, Result, bail, ensure};
use conference_backend::{
    chain::{ConferenceEscrow, batch},
    dev::devnet::{ACTIVATION_WINDOW, OFFERS},
    domain::order::{Order, SignedOrder},
};
use conference_e2e::{Stack, TIME_TRAVEL, gas_cost};
use serde_json::{Value, json};

const STEP: Duration = Duration::from_secs(60);
/// The dev chain's terms 1-4: DynamicPrice, FixedPrice, TimeLimited, FlexiblePeriod (all in ETH).
const TERMS: [u32; 4] = [1, 2, 3, 4];
const BATCH: usize = 10;

/// A stack whose backend runs no rooms (the no-op orchestrator), sends at most [`BATCH`] calls a batch
/// and `in_flight` batches waiting for their blocks at once, and takes hour-long availability slots (the
/// clock may jump).
async fn stack_in_flight(name: &str, in_flight: u64) -> Result<Stack> {
    let mut stack = Stack::start_time_travelling(name).await?;
    let mut flags = TIME_TRAVEL.to_vec();
    let (batch, in_flight) = (BATCH.to_string(), in_flight.to_string());
    flags.extend(["--orchestrator", "noop", "--operator-batch-size", &batch, "--operator-in-flight", &in_flight]);
    stack.restart_with(None, &flags).await?;
    Ok(stack)
}

/// [`stack_in_flight`] with one batch in flight: while it waits for its block, what becomes due gathers
/// for the next one, so that the tests can count batches.
async fn stack(name: &str) -> Result<Stack> {
    stack_in_flight(name, 1).await
}

fn wei(record: &Value, key: &str) -> Result<U256> {
    Ok(record[key].as_str().with_context(|| format!("{key} missing in {record}"))?.parse()?)
}

fn price_of(terms: u32) -> U256 {
    U256::from(OFFERS[terms as usize - 1].price())
}

/// What an order of the dev terms `terms` locks (no constraints): the deposit of its longest conference.
fn lock_of(terms: u32) -> U256 {
    let offer = &OFFERS[terms as usize - 1];
    let (price, duration) = (U256::from(offer.price()), U256::from(offer.max_duration));
    match terms {
        1 => price * duration,
        2 => price,
        3 => price * duration / U256::from(60),
        _ => U256::from(offer.minimum_charge) + price * duration,
    }
}

/// What a conference of terms `terms` that ran `used` seconds is charged (full availability).
fn charge_of(terms: u32, used: u64) -> U256 {
    let (price, used) = (price_of(terms), U256::from(used));
    match terms {
        1 => price * used,
        2 => price,
        3 => price * used / U256::from(60),
        _ => U256::from(OFFERS[3].minimum_charge) + price * used,
    }
}

async fn chain_now(stack: &Stack) -> Result<u64> {
    let block = stack.customer.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await?.context("no block")?;
    Ok(block.header.timestamp)
}

/// The customer's account in ETH: (free, locked).
async fn account(stack: &Stack) -> Result<(U256, U256)> {
    let account = stack.escrow().accountOf(stack.customer_address(), 0).call().await?;
    Ok((U256::from(account.free), U256::from(account.locked)))
}

async fn deposit(stack: &Stack, amount: U256) -> Result<alloy::rpc::types::TransactionReceipt> {
    let receipt = stack.escrow().depositToAccount(0, amount).value(amount).send().await?.get_receipt().await?;
    ensure!(receipt.status(), "the deposit reverted");
    Ok(receipt)
}

fn order(terms: u32, max_cost: U256, nonce: u64, deadline: u64) -> Order {
    Order { terms_id: terms, allowed_regions: 0, gdpr: false, max_cost, nonce: U256::from(nonce), deadline }
}

/// The order signed by `key` (EIP-712 in the escrow's domain), as `POST /api/orders` takes it.
fn signed(stack: &Stack, key: &PrivateKeySigner, order: &Order) -> Result<SignedOrder> {
    let digest = order.digest(stack.devnet.anvil.chain_id(), stack.devnet.escrow);
    let signature = key.sign_hash_sync(&digest)?;
    Ok(SignedOrder {
        customer: stack.customer_address(),
        order: order.clone(),
        signature: signature.as_bytes().to_vec().into(),
    })
}

fn body(signed: &SignedOrder) -> Value {
    let o = &signed.order;
    json!({
        "customer": format!("{:#x}", signed.customer),
        "order": {
            "termsId": o.terms_id,
            "allowedRegions": o.allowed_regions,
            "gdpr": o.gdpr,
            "maxCost": o.max_cost.to_string(),
            "nonce": o.nonce.to_string(),
            "deadline": o.deadline,
        },
        "signature": signed.signature.to_string(),
    })
}

async fn get_order(stack: &Stack, nonce: u64) -> Result<(u16, Value)> {
    let url = format!("{}/api/orders/{:#x}/{nonce}", stack.api, stack.customer_address());
    let response = reqwest::get(url).await?;
    Ok((response.status().as_u16(), response.json().await?))
}

/// Waits until the order is opened; its agreement id.
async fn opened(stack: &Stack, nonce: u64) -> Result<u64> {
    let started = Instant::now();
    loop {
        let (status, view) = get_order(stack, nonce).await?;
        ensure!(status == 200, "order {nonce}: {status} {view}");
        match view["status"].as_str() {
            Some("opened") => return view["agreementId"].as_u64().context("an opened order names its agreement"),
            Some("failed") => bail!("order {nonce} failed: {view}"),
            _ if started.elapsed() > STEP => bail!("order {nonce} not opened: {view}; log:\n{}", stack.log_tail()),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The customer's signed stop of agreement `id`'s conference at `stopped_at`, as the API takes it.
fn stop_body(stack: &Stack, id: u64, started_at: u64, stopped_at: u64, deadline: u64) -> Result<Value> {
    use conference_backend::domain::stop::SignedStop;
    let stop = SignedStop { started_at, stopped_at, deadline, signature: Default::default() };
    let digest = stop.digest(id, 1, stack.devnet.anvil.chain_id(), stack.devnet.escrow);
    let signature = stack.devnet.customer.sign_hash_sync(&digest)?;
    Ok(
        json!({ "stoppedAt": stopped_at, "deadline": deadline, "signature": alloy::hex::encode_prefixed(signature.as_bytes()) }),
    )
}

fn outbox_state(record: &Value, call: &str) -> Option<String> {
    record["outbox"].as_array()?.iter().find(|item| item["call"] == call)?["state"].as_str().map(str::to_owned)
}

/// The transactions that emitted `OrderFilled`, each with how many orders it opened.
async fn order_batches(stack: &Stack) -> Result<Vec<(alloy::primitives::B256, usize)>> {
    let filter = alloy::rpc::types::Filter::new()
        .address(stack.devnet.escrow)
        .event_signature(ConferenceEscrow::OrderFilled::SIGNATURE_HASH)
        .from_block(0);
    let mut batches: Vec<(alloy::primitives::B256, usize)> = Vec::new();
    for log in stack.customer.get_logs(&filter).await? {
        let tx = log.transaction_hash.context("a mined log has its transaction")?;
        match batches.last_mut() {
            Some((last, count)) if *last == tx => *count += 1,
            _ => batches.push((tx, 1)),
        }
    }
    Ok(batches)
}

/// Signs a direct agreement that only the US may serve (this backend runs in the EU): the operator
/// declines it, and its decline is a call of the operator's next batch. With blocks held, that batch
/// waits in the mempool, and what becomes due meanwhile gathers for the batch after it.
async fn hold_a_batch_in_the_mempool(stack: &Stack) -> Result<(u64, alloy::rpc::types::TransactionReceipt)> {
    let us_only = 1 << 1;
    let deposit = stack.escrow().quote(TERMS[0], us_only, false, U256::ZERO).call().await?.deposit;
    stack.set_automine(false).await?;
    let pending = stack.escrow().sign(TERMS[0], us_only, false).value(deposit).send().await?;
    stack.mine().await?;
    let (id, receipt) = conference_e2e::signed(pending.get_receipt().await?)?;
    stack.wait_for(id, "its decline sent", STEP, |r| outbox_state(r, "decline").as_deref() == Some("sent")).await?;
    Ok((id, receipt))
}

/// Lets the held blocks go: the held batch is mined, and blocks are mined at once again.
async fn release_blocks(stack: &Stack) -> Result<()> {
    stack.set_automine(true).await?;
    stack.mine().await
}

/// Posts an order under each of `terms` in turn (its nonce: its place there), each accepted; the answers.
async fn post_orders(stack: &Stack, terms: &[u32], deadline: u64) -> Result<Vec<Value>> {
    let mut answers = Vec::new();
    for (nonce, &t) in terms.iter().enumerate() {
        let signed = signed(stack, &stack.devnet.customer, &order(t, lock_of(t), nonce as u64, deadline))?;
        let (status, answer) = stack.post("/api/orders", &body(&signed)).await?;
        ensure!(status == 202, "order {nonce}: {status} {answer}");
        answers.push(answer);
    }
    Ok(answers)
}

/// Waits until `done` holds, looking every 50 ms for at most [`STEP`]; `what` names it if it never does.
async fn until<F: Future<Output = Result<bool>>>(stack: &Stack, what: &str, mut done: impl FnMut() -> F) -> Result<()> {
    let waiting = Instant::now();
    while !done().await? {
        ensure!(waiting.elapsed() < STEP, "{what}: not within {STEP:?}; log:\n{}", stack.log_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Sets the gas a block holds, from the next block on (mined at once).
async fn set_block_gas(stack: &Stack, gas: u64) -> Result<()> {
    stack.customer.raw_request::<_, Value>("evm_setBlockGasLimit".into(), (format!("{gas:#x}"),)).await?;
    stack.mine().await
}

/// The operator's transactions the node holds unmined.
async fn operator_unmined(stack: &Stack) -> Result<u64> {
    let operator = stack.devnet.operator.address();
    let pending = stack.customer.get_transaction_count(operator).pending().await?;
    Ok(pending - stack.customer.get_transaction_count(operator).latest().await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_opened_on_chain_but_not_yet_read_here_is_not_counted_twice() -> Result<()> {
    // The watcher reads one block below the head: an order opened in the newest block is out of the
    // free balance on-chain, and still pending here until the next block.
    let stack =
        Stack::start_with("accounts-opened-unread", false, &["--orchestrator", "noop", "--confirmations", "1"]).await?;
    let lock = lock_of(TERMS[0]);
    deposit(&stack, lock * U256::from(2)).await?;
    let deadline = chain_now(&stack).await? + 3600;
    post_orders(&stack, &[TERMS[0]], deadline).await?;
    until(&stack, "the first order opened on-chain", || async { Ok(account(&stack).await? == (lock, lock)) }).await?;
    let (_, first) = get_order(&stack, 0).await?;
    assert_eq!(first["status"], "pending", "not read here yet: {first}");
    // What is free on-chain covers the second order: the first is not also counted as promised.
    let second = signed(&stack, &stack.devnet.customer, &order(TERMS[0], lock, 1, deadline))?;
    let (status, answer) = stack.post("/api/orders", &body(&second)).await?;
    assert_eq!(status, 202, "{answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_in_a_batch_not_yet_mined_is_still_promised() -> Result<()> {
    let stack = stack("accounts-batch-unmined").await?;
    let lock = lock_of(TERMS[0]);
    deposit(&stack, lock).await?;
    let deadline = chain_now(&stack).await? + 3600;
    stack.set_automine(false).await?;
    post_orders(&stack, &[TERMS[0]], deadline).await?;
    until(&stack, "the order's batch sent", || async { Ok(operator_unmined(&stack).await? > 0) }).await?;
    // Sent, not mined: the whole deposit is still free on-chain, and all of it promised to the first.
    assert_eq!(account(&stack).await?, (lock, U256::ZERO));
    let second = signed(&stack, &stack.devnet.customer, &order(TERMS[0], lock, 1, deadline))?;
    let (status, answer) = stack.post("/api/orders", &body(&second)).await?;
    assert_eq!(status, 422, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains("Escrow_InsufficientBalance") && error.contains(&format!("{lock} is promised")), "{answer}");
    // Mined: the first is opened (its lock out of the free balance), and the second is still refused.
    release_blocks(&stack).await?;
    opened(&stack, 0).await?;
    assert_eq!(account(&stack).await?, (U256::ZERO, lock));
    let (status, answer) = stack.post("/api/orders", &body(&second)).await?;
    assert_eq!(status, 422, "{answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn with_two_batches_in_flight_the_second_waits_beside_the_first_and_the_rest_gather() -> Result<()> {
    let stack = stack_in_flight("accounts-in-flight", 2).await?;
    let terms: Vec<u32> = (0..20).map(|i| TERMS[i % 4]).collect();
    deposit(&stack, terms.iter().map(|&t| lock_of(t)).sum()).await?;
    // Blocks held: the decline's batch waits, a batch of orders is sent beside it, and then, with two in
    // flight, the other orders wait in the store.
    let (declined, direct_sign) = hold_a_batch_in_the_mempool(&stack).await?;
    post_orders(&stack, &terms, chain_now(&stack).await? + 3600).await?;
    until(&stack, "a second batch sent while the first waits", || async { Ok(operator_unmined(&stack).await? >= 2) })
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(operator_unmined(&stack).await?, 2, "never more than two batches in flight");

    release_blocks(&stack).await?;
    for nonce in 0..terms.len() as u64 {
        opened(&stack, nonce).await?;
    }
    stack.wait_status(declined, "refunded", STEP).await?;
    let decline_block = stack.agreement(declined).await?.context("the declined record")?["outbox"]
        .as_array()
        .and_then(|calls| calls.iter().find(|c| c["call"] == "decline"))
        .and_then(|call| call["minedBlock"].as_u64())
        .context("the decline's block")?;
    ensure!(decline_block > direct_sign.block_number.unwrap_or_default(), "declined after its signing");
    let mut blocks = Vec::new();
    for (tx, count) in order_batches(&stack).await? {
        let receipt = stack.customer.get_transaction_receipt(tx).await?.context("the batch's receipt")?;
        blocks.push((receipt.block_number.context("mined")?, count));
    }
    assert_eq!(blocks[0].0, decline_block, "the first orders were mined beside the held decline: {blocks:?}");
    assert!(blocks[1..].iter().all(|(block, _)| *block > decline_block), "the others gathered for later: {blocks:?}");
    assert_eq!(blocks.iter().map(|(_, count)| count).sum::<usize>(), terms.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_conferences_from_one_deposit_in_two_batches_are_paid_to_the_wei() -> Result<()> {
    let stack = stack("accounts-twenty").await?;
    let customer = stack.customer_address();
    let wallet_before = stack.balance(customer).await?;
    // Five conferences of each model, from one deposit with a little left over.
    let terms: Vec<u32> = (0..20).map(|i| TERMS[i % 4]).collect();
    let locks: U256 = terms.iter().map(|&t| lock_of(t)).sum();
    let spare = U256::from(10u64.pow(15));
    let deposited = locks + spare;
    let deposit_receipt = deposit(&stack, deposited).await?;
    assert_eq!(account(&stack).await?, (deposited, U256::ZERO));

    // The twenty orders arrive while the operator's previous batch (a decline) waits for its block: they
    // go out in the next two batches of ten, whatever the timing of the posts.
    let (declined, direct_sign) = hold_a_batch_in_the_mempool(&stack).await?;
    for (nonce, answer) in post_orders(&stack, &terms, chain_now(&stack).await? + 3600).await?.into_iter().enumerate() {
        assert_eq!(
            answer,
            json!({ "customer": format!("{customer:#x}"), "nonce": nonce.to_string(), "status": "pending", "agreementId": null, "reason": null })
        );
    }
    release_blocks(&stack).await?;
    let mut ids = Vec::new();
    for nonce in 0..terms.len() as u64 {
        ids.push(opened(&stack, nonce).await?);
    }
    let batches = order_batches(&stack).await?;
    assert_eq!(batches.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [BATCH, BATCH], "two batches of ten: {batches:?}");
    for (tx, _) in &batches {
        let sent = stack.customer.get_transaction_by_hash(*tx).await?.context("the batch transaction")?;
        assert_eq!(sent.inner.signer(), stack.devnet.operator.address(), "the operator sends the batches");
    }
    stack.wait_status(declined, "refunded", STEP).await?;
    assert_eq!(account(&stack).await?, (spare, locks), "each order locks its longest conference");

    // Every conference is activated, then stopped by the customer's signature (no gas), 60 s + 10 s × i
    // after its start. The stops' calls gather behind a held batch again; the first batch of them waits in
    // the mempool while the customer also stops one of its conferences on-chain, mined first (a higher
    // tip): that call fails in its batch and the others there settle.
    let mut started = Vec::new();
    for &id in &ids {
        let active = stack.wait_status(id, "active", STEP).await?;
        assert_eq!(active["fromAccount"], true, "{active}");
        started.push(active["startedAt"].as_u64().context("startedAt")?);
        stack.wait_for(id, "a probe", STEP, |r| r["conference"]["probes"].as_u64() >= Some(1)).await?;
    }
    let latest = *started.iter().max().unwrap();
    stack.set_next_block_time(latest + 300).await?;
    stack.mine().await?;
    let (second_decline, second_sign) = hold_a_batch_in_the_mempool(&stack).await?;
    for (i, &id) in ids.iter().enumerate() {
        let stopped_at = started[i] + 60 + 10 * i as u64;
        let stop = stop_body(&stack, id, started[i], stopped_at, latest + 3600)?;
        let (status, answer) = stack.post(&format!("/api/agreements/{id}/stop"), &stop).await?;
        assert_eq!(status, 202, "{answer}");
    }
    for &id in &ids {
        stack.wait_for(id, "its stopAndSettle queued", STEP, |r| outbox_state(r, "stopAndSettle").is_some()).await?;
    }
    stack.mine().await?;
    let in_first_batch = |r: &Value| outbox_state(r, "stopAndSettle").as_deref() == Some("sent");
    let bad = 'found: {
        let waiting = Instant::now();
        while waiting.elapsed() < STEP {
            for &id in &ids {
                if in_first_batch(&stack.agreement(id).await?.context("record")?) {
                    break 'found id;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("no stopAndSettle batch was sent; log:\n{}", stack.log_tail());
    };
    // A gas limit of its own: estimating on the pending block would see the batch settle it first.
    let tip = 50_000_000_000u128;
    let escrow = stack.escrow();
    let stop = escrow.stop(U256::from(bad)).gas(200_000).max_priority_fee_per_gas(tip).max_fee_per_gas(4 * tip);
    let stop_on_chain = stop.send().await?;
    release_blocks(&stack).await?;
    let stop_on_chain = stop_on_chain.get_receipt().await?;
    ensure!(stop_on_chain.status(), "the customer's stop reverted");

    let mut charges = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let settled = stack.wait_status(id, "settled", STEP).await?;
        let used = settled["endedAt"].as_u64().context("endedAt")? - started[i];
        if id == bad {
            let failed =
                settled["outbox"].as_array().and_then(|o| o.iter().find(|c| c["call"] == "stopAndSettle")).cloned();
            let failed = failed.context("the signed stop's call")?;
            assert_eq!(failed["state"], "failed", "{settled}");
            assert!(failed["outcome"].as_str().is_some_and(|o| o.contains("Escrow_WrongStatus")), "{failed}");
            let by_settle = |r: &Value| outbox_state(r, "settle").as_deref() == Some("done");
            stack.wait_for(id, "settled by a settle instead", STEP, by_settle).await?;
        } else {
            assert_eq!(used, 60 + 10 * i as u64, "the signed time is the end: {settled}");
        }
        let charge = charge_of(terms[i], used);
        assert_eq!(wei(&settled, "charged")?, charge, "agreement {id} ({}): {settled}", terms[i]);
        assert_eq!(wei(&settled, "refund")?, lock_of(terms[i]) - charge, "{settled}");
        assert_eq!(settled["refundDeferred"], true, "credited to the account, never sent: {settled}");
        charges.push(charge);
    }
    stack.wait_status(second_decline, "refunded", STEP).await?;

    // The account, each provider, the owner and the wallet, to the wei.
    let charged: U256 = charges.iter().copied().sum();
    assert_eq!(account(&stack).await?, (deposited - charged, U256::ZERO), "free = deposit − charges, nothing locked");
    let (mut infra, mut software) = (U256::ZERO, U256::ZERO);
    for (charge, &t) in charges.iter().zip(&terms) {
        let offer = &OFFERS[t as usize - 1];
        infra += *charge * U256::from(offer.components.0) / price_of(t);
        software += *charge * U256::from(offer.components.1) / price_of(t);
    }
    let (infra_id, software_id) = stack.devnet.provider_ids;
    assert_eq!(stack.earnings(infra_id).await?, infra, "infrastructure earnings");
    assert_eq!(stack.earnings(software_id).await?, software, "software earnings");
    assert_eq!(
        stack.credit(stack.devnet.owner.address()).await?,
        charged - infra - software,
        "the owner's margin and dust"
    );
    assert_eq!(stack.credit(customer).await?, U256::ZERO, "no refund left waiting: account refunds are free balance");
    let spent = deposited
        + gas_cost(&deposit_receipt)
        + gas_cost(&direct_sign)
        + gas_cost(&second_sign)
        + gas_cost(&stop_on_chain);
    assert_eq!(
        wallet_before - stack.balance(customer).await?,
        spent,
        "the declined direct deposits came back; no gas per conference"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawal_asked_for_while_a_conference_runs_pays_only_what_is_free_after_the_window() -> Result<()> {
    let stack = stack("accounts-withdrawal").await?;
    let customer = stack.customer_address();
    let (terms, lock) = (TERMS[0], lock_of(TERMS[0]));
    let deposited = lock * U256::from(3);
    deposit(&stack, deposited).await?;
    let deadline = chain_now(&stack).await? + 600;
    let signed = signed(&stack, &stack.devnet.customer, &order(terms, lock, 1, deadline))?;
    assert_eq!(stack.post("/api/orders", &body(&signed)).await?.0, 202);
    let id = opened(&stack, 1).await?;
    let active = stack.wait_status(id, "active", STEP).await?;
    let started_at = active["startedAt"].as_u64().context("startedAt")?;
    stack.wait_for(id, "a probe", STEP, |r| r["conference"]["probes"].as_u64() >= Some(1)).await?;

    // Everything is asked for; only the free part can go, and only after the activation window.
    let wallet_before = stack.balance(customer).await?;
    let request = stack.escrow().requestWithdrawal(0, deposited).send().await?.get_receipt().await?;
    ensure!(request.status(), "the request reverted");
    let early = stack.escrow().completeWithdrawal(0).call().await;
    assert!(early.is_err(), "not due before the activation window passed");
    let asked_at = chain_now(&stack).await?;
    stack.set_next_block_time(asked_at + ACTIVATION_WINDOW).await?;
    let complete = stack.escrow().completeWithdrawal(0).send().await?.get_receipt().await?;
    ensure!(complete.status(), "the withdrawal reverted");
    let paid = deposited - lock;
    assert_eq!(stack.balance(customer).await? + gas_cost(&request) + gas_cost(&complete), wallet_before + paid);
    assert_eq!(account(&stack).await?, (U256::ZERO, lock), "the running conference's lock stays");
    assert_eq!(stack.agreement(id).await?.context("record")?["status"], "active", "the conference runs on");

    // Its settlement frees the rest of the lock in the account.
    let stopped_at = started_at + 120;
    let now = chain_now(&stack).await?;
    let (status, answer) = stack
        .post(&format!("/api/agreements/{id}/stop"), &stop_body(&stack, id, started_at, stopped_at, now + 3600)?)
        .await?;
    assert_eq!(status, 202, "{answer}");
    let settled = stack.wait_status(id, "settled", STEP).await?;
    let charge = charge_of(terms, 120);
    assert_eq!(wei(&settled, "charged")?, charge);
    assert_eq!(account(&stack).await?, (lock - charge, U256::ZERO));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_expired_and_unfunded_orders_are_refused_by_the_api_and_skipped_by_the_chain() -> Result<()> {
    let stack = stack("accounts-refused").await?;
    let customer = stack.customer_address();
    let fixed = TERMS[1];
    let funded = lock_of(fixed) * U256::from(2);
    deposit(&stack, funded).await?;
    let now = chain_now(&stack).await?;
    let key = &stack.devnet.customer;

    // Accepted, then replayed: refused while pending and once opened, with nothing new kept.
    let first = signed(&stack, key, &order(fixed, lock_of(fixed), 1, now + 600))?;
    assert_eq!(stack.post("/api/orders", &body(&first)).await?.0, 202);
    let (status, answer) = stack.post("/api/orders", &body(&first)).await?;
    assert_eq!(status, 409, "{answer}");
    let opened_id = opened(&stack, 1).await?;
    let (status, answer) = stack.post("/api/orders", &body(&first)).await?;
    assert_eq!(status, 409, "{answer}");

    // Expired; over the balance (what is free is one fixed conference); over its own limit; signed by a
    // stranger; malformed. Each a clear 4xx; none kept.
    let expired = signed(&stack, key, &order(fixed, lock_of(fixed), 2, now - 1))?;
    let (status, answer) = stack.post("/api/orders", &body(&expired)).await?;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("deadline")), "{answer}");
    let dynamic = TERMS[0];
    let unfunded = signed(&stack, key, &order(dynamic, lock_of(dynamic), 3, now + 600))?;
    let (status, answer) = stack.post("/api/orders", &body(&unfunded)).await?;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.starts_with("Escrow_InsufficientBalance")), "{answer}");
    let over_limit = signed(&stack, key, &order(fixed, lock_of(fixed) - U256::from(1), 4, now + 600))?;
    let (status, answer) = stack.post("/api/orders", &body(&over_limit)).await?;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.starts_with("Escrow_OrderOverLimit")), "{answer}");
    let forged = signed(&stack, &PrivateKeySigner::random(), &order(fixed, lock_of(fixed), 5, now + 600))?;
    let (status, answer) = stack.post("/api/orders", &body(&forged)).await?;
    assert_eq!(status, 400, "{answer}");
    let mut malformed = body(&first);
    malformed["order"]["maxCost"] = json!("1e18");
    assert_eq!(stack.post("/api/orders", &malformed).await?.0, 400);
    for nonce in 2..=5 {
        assert_eq!(get_order(&stack, nonce).await?.0, 404, "refused order {nonce} is not kept");
    }
    assert_eq!(account(&stack).await?, (funded - lock_of(fixed), lock_of(fixed)));

    // The same three sent straight to the chain by the operator in one batch, with a good order: the bad
    // ones are skipped, each with its reason, and the good one opens.
    let good = signed(&stack, key, &order(fixed, lock_of(fixed), 6, now + 600))?;
    let calls: Vec<_> = [&first, &expired, &unfunded, &good].into_iter().map(batch::open_order_calldata).collect();
    let operator = ConferenceEscrow::new(stack.devnet.escrow, stack.devnet.provider_for(&stack.devnet.operator)?);
    let receipt = operator.batch(calls).send().await?.get_receipt().await?;
    let outcomes = batch::outcomes(&receipt, stack.devnet.escrow, 4);
    assert_eq!(
        outcomes,
        [
            Err("Escrow_OrderNonceUsed".to_owned()),
            Err("Escrow_OrderExpired".to_owned()),
            Err("Escrow_InsufficientBalance".to_owned()),
            Ok(())
        ]
    );
    let filled: Vec<_> =
        receipt.logs().iter().filter_map(|log| log.log_decode::<ConferenceEscrow::OrderFilled>().ok()).collect();
    assert_eq!(filled.len(), 1);
    assert_eq!((filled[0].inner.customer, filled[0].inner.nonce), (customer, U256::from(6)));
    let direct = filled[0].inner.agreementId.to::<u64>();
    assert_ne!(direct, opened_id);
    assert_eq!(account(&stack).await?, (U256::ZERO, funded), "two fixed conferences locked, nothing free");
    // The backend follows the agreement it did not open like any other.
    let active = stack.wait_status(direct, "active", STEP).await?;
    assert_eq!(active["fromAccount"], true);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_too_big_for_a_block_is_sent_in_parts_that_fit_and_an_order_no_block_holds_fails() -> Result<()> {
    let stack = stack("accounts-block-limit").await?;
    let terms: Vec<u32> = (0..=BATCH).map(|i| TERMS[i % 4]).collect();
    deposit(&stack, terms.iter().map(|&t| lock_of(t)).sum()).await?;
    // Blocks of 400,000 gas: two openings with their margin, where the batch of ten would need about
    // 1.2 million (a chain with a lower block gas limit than the batch size assumes).
    const BLOCK_GAS: u64 = 400_000;
    set_block_gas(&stack, BLOCK_GAS).await?;
    // The ten orders gather while the operator's previous batch waits for its block.
    hold_a_batch_in_the_mempool(&stack).await?;
    let deadline = chain_now(&stack).await? + 3600;
    post_orders(&stack, &terms[..BATCH], deadline).await?;
    release_blocks(&stack).await?;
    for nonce in 0..BATCH as u64 {
        opened(&stack, nonce).await?;
    }
    let batches = order_batches(&stack).await?;
    ensure!(batches.len() > 1, "the ten orders went out in several batches: {batches:?}");
    for (tx, _) in &batches {
        let receipt = stack.customer.get_transaction_receipt(*tx).await?.context("the batch's receipt")?;
        ensure!(receipt.status() && receipt.gas_used <= BLOCK_GAS, "a batch within a block: {receipt:?}");
    }
    assert_eq!(batches.iter().map(|(_, count)| count).sum::<usize>(), BATCH);

    // An opening alone needs a limit of about 220,000 gas: in blocks of 150,000 the order is failed
    // with why, not tried again and again.
    set_block_gas(&stack, 150_000).await?;
    let order =
        signed(&stack, &stack.devnet.customer, &order(terms[BATCH], lock_of(terms[BATCH]), BATCH as u64, deadline))?;
    let (status, answer) = stack.post("/api/orders", &body(&order)).await?;
    ensure!(status == 202, "the last order: {status} {answer}");
    until(&stack, "the order no block holds failed", || async {
        let (_, view) = get_order(&stack, BATCH as u64).await?;
        Ok(view["status"] == "failed")
    })
    .await?;
    let (_, view) = get_order(&stack, BATCH as u64).await?;
    let reason = view["reason"].as_str().unwrap_or_default();
    ensure!(reason.contains("would not run even alone") && reason.contains("more than a block's 150000"), "{view}");
    assert_eq!(order_batches(&stack).await?.iter().map(|(_, count)| count).sum::<usize>(), BATCH, "never sent");
    Ok(())
}
