//! Floors: what each of the escrow's operations cannot avoid writing, sending and logging, and what
//! that costs. The table (`must_do`) names storage variables; the escrow's storage layout
//! (`forge inspect ConferenceEscrow storageLayout --json`, which `make bench-gas` writes beside the
//! bench's build output) turns them into slots, and the escrow's ABI gives each event's size.

use std::{collections::BTreeMap, fs, path::Path};

use alloy::{json_abi::JsonAbi, primitives::Bytes};
use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::Model;

/// How an operation changes a storage slot, priced for the first write to that slot in the transaction,
/// the slot cold (EIP-2929 access 2,100; EIP-2200 and EIP-3529 set costs and refunds).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Write {
    /// Non-zero to another non-zero value: 2,100 + 2,900.
    Changed,
    /// Non-zero to zero: 2,100 + 2,900, and 4,800 refunded (at most a fifth of the transaction's gas).
    Cleared,
    /// Zero to non-zero: 2,100 + 20,000.
    New,
}

impl Write {
    pub fn gas(self) -> u64 {
        match self {
            Write::Changed | Write::Cleared => 5_000,
            Write::New => 22_100,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Write::Changed => "changed",
            Write::Cleared => "cleared",
            Write::New => "new",
        }
    }
}

/// Who receives ETH an operation pushes. A value call costs the account's access (100 warm, 2,600
/// cold) + 9,000, and the 2,300 stipend the callee does not use comes back (25,000 more for an account
/// that does not exist yet: none here, everyone paid already holds ETH).
#[derive(Clone, Copy)]
enum Recipient {
    /// The transaction's sender: warm.
    Sender,
    /// Anyone else: cold.
    Other,
}

impl Recipient {
    fn gas(self) -> u64 {
        let access = match self {
            Recipient::Sender => 100,
            Recipient::Other => 2_600,
        };
        access + 9_000 - 2_300
    }
}

/// What an operation must do: the slots it writes (a storage variable, or a mapping's struct member as
/// `mapping.member`: members that share a slot in the layout are one write), the ETH it pushes, the
/// events the specification requires of it.
pub struct Must {
    writes: Vec<(&'static str, Write)>,
    sends: Vec<Recipient>,
    events: Vec<&'static str>,
}

/// The floors' table: for each operation of each model, what it must write, send and log. The state is
/// the contract's (ARCHITECTURE.md's agreement entry: what later operations and the customer's audit
/// read back); every other cost (reads, role checks, the registry call, reentrancy guards, memory,
/// arithmetic) is counted as avoidable. Steady state: the counter and a provider's earnings exist.
pub fn must_do(model: Model, op: &str) -> Option<Must> {
    use Recipient::{Other, Sender};
    use Write::{Changed, Cleared, New};
    // A new agreement: its id from the counter, its one slot (customer, terms, status, when). What its
    // terms already say is not copied; a time-limited or flexible agreement also has its own duration
    // (its second slot).
    let open = || vec![("_agreementCount", Changed), ("_agreements.customer", New)];
    let with = |mut writes: Vec<(&'static str, Write)>, more: &[(&'static str, Write)]| {
        writes.extend_from_slice(more);
        writes
    };
    let must = |writes, sends, events| Some(Must { writes, sends, events });
    let (timed, flexible) = (model == Model::TimeLimited, model == Model::FlexiblePeriod);
    // Paid for: the status (time-limited: Idle, the seconds used taken off its duration, the charge added
    // to the account and its sessions counted), the provider's earnings raised, and the unused deposit
    // pushed back to the customer (none at a fixed price; time-limited, at close).
    let paid = || {
        let mut writes = vec![("_agreements.status", Changed), ("_earnings", Changed)];
        if timed {
            writes.extend([
                ("_details.duration", Changed),
                ("_minutesAccounts.charged", Changed),
                ("_minutesAccounts.sessions", Changed),
            ]);
        }
        let sends = if timed || model == Model::FixedPrice { vec![] } else { vec![Other] };
        (writes, sends)
    };
    match op {
        "sign" if !timed && !flexible => must(open(), vec![], vec!["AgreementSigned"]),
        "buyMinutes" if timed => must(
            with(open(), &[("_details.duration", New), ("_minutesAccounts.deposit", New)]),
            vec![],
            vec!["AgreementSigned"],
        ),
        "reserve" if flexible => must(
            with(
                open(),
                &[
                    ("_details.duration", New),
                    ("_windows.from", New),
                    ("_windows.to", New),
                    ("_windows.minimumCharge", New),
                ],
            ),
            vec![],
            vec!["AgreementSigned", "WindowReserved"],
        ),
        // Requested, and when (one slot): the activation window runs from the request.
        "start" if timed || flexible => must(vec![("_agreements.status", Changed)], vec![], vec!["StartRequested"]),
        // Active, where and from when (billing starts here), in one slot; flexible, until the window's end.
        "activate" => {
            let mut writes = vec![("_agreements.status", Changed)];
            if flexible {
                writes.push(("_details.duration", Changed));
            }
            must(writes, vec![], vec!["AgreementActivated"])
        }
        // Ended, and when: a fixed or dynamic price agreement's second slot is new here.
        "stop" => must(
            vec![("_agreements.status", Changed), ("_details.endedAt", if timed || flexible { Changed } else { New })],
            vec![],
            vec!["AgreementEnded"],
        ),
        "settle" => {
            let (writes, sends) = paid();
            must(writes, sends, vec!["AgreementSettled"])
        }
        // Ended and paid for in one call: the end is in the event, the rest as a settlement.
        "stopAndSettle" => {
            let (writes, sends) = paid();
            must(writes, sends, vec!["AgreementEnded", "AgreementSettled"])
        }
        "close" if timed => must(vec![("_agreements.status", Changed)], vec![Sender], vec!["AgreementClosed"]),
        // The earnings cleared and sent to the provider's payout address (not the caller).
        "withdraw" => must(vec![("_earnings", Cleared)], vec![Other], vec!["EarningsWithdrawn"]),
        _ => None,
    }
}

/// A floor and how it adds up.
pub struct Floor {
    pub gas: u64,
    pub detail: String,
}

impl Must {
    /// 21,000 + the calldata (4 gas a zero byte, 16 a non-zero one, of the transaction actually sent) +
    /// the slots written + the ETH pushed + the logs (375 + 375 a topic + 8 a data byte) − the refunds.
    pub fn floor(&self, layout: &Layout, abi: &JsonAbi, calldata: &Bytes) -> Result<Floor> {
        let zeros = calldata.iter().filter(|b| **b == 0).count() as u64;
        let data = zeros * 4 + (calldata.len() as u64 - zeros) * 16;
        let mut parts = vec![format!("21,000 + calldata {} B {}", calldata.len(), thousands(data))];
        let mut slots: BTreeMap<String, Write> = BTreeMap::new();
        for (name, write) in &self.writes {
            let slot = layout.slot(name)?;
            let entry = slots.entry(slot).or_insert(*write);
            *entry = (*entry).max(*write);
        }
        let writes: u64 = slots.values().map(|w| w.gas()).sum();
        for (slot, write) in &slots {
            parts.push(format!("{slot} {} {}", write.word(), thousands(write.gas())));
        }
        let sends: u64 = self.sends.iter().map(|r| r.gas()).sum();
        for r in &self.sends {
            let whom = if matches!(r, Recipient::Sender) { "the sender" } else { "a cold account" };
            parts.push(format!("ETH to {whom} {}", thousands(r.gas())));
        }
        let mut logs = 0;
        for name in &self.events {
            let event = abi
                .event(name)
                .and_then(|e| e.first())
                .with_context(|| format!("no event {name} in the escrow's ABI"))?;
            let topics = 1 + event.inputs.iter().filter(|p| p.indexed).count() as u64;
            let words = event.inputs.iter().filter(|p| !p.indexed).count() as u64;
            ensure!(
                event.inputs.iter().all(|p| !(p.ty.ends_with(']') || p.ty == "bytes" || p.ty == "string")),
                "event {name} has a dynamic field: its log size is not fixed"
            );
            let gas = 375 + 375 * topics + 8 * 32 * words;
            parts.push(format!("log {name} {}", thousands(gas)));
            logs += gas;
        }
        let total = 21_000 + data + writes + sends + logs;
        let cleared = slots.values().filter(|w| **w == Write::Cleared).count() as u64;
        let refund = (cleared * 4_800).min(total / 5);
        if refund > 0 {
            parts.push(format!("refund −{}", thousands(refund)));
        }
        Ok(Floor { gas: total - refund, detail: parts.join(" + ") })
    }
}

/// The escrow's storage layout, as `forge inspect … storageLayout --json` prints it.
pub struct Layout(Value);

impl Layout {
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).with_context(|| {
            format!("{} is missing: run `make bench-gas` (it writes the escrow's storage layout)", path.display())
        })?;
        Ok(Self(serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?))
    }

    /// The slot a name writes, as words: `slot 3` for a variable (packed variables share it),
    /// `_agreements[…] slot 1` for a member of a mapping's struct, `_earnings[…]` for a mapping's word.
    fn slot(&self, name: &str) -> Result<String> {
        let (variable, member) = match name.split_once('.') {
            Some((v, m)) => (v, Some(m)),
            None => (name, None),
        };
        let entry = self.0["storage"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["label"] == variable)
            .with_context(|| format!("no storage variable {variable} in the escrow's layout"))?;
        let types = &self.0["types"];
        let mut ty = &types[entry["type"].as_str().context("a storage entry without a type")?];
        if ty["encoding"] != "mapping" {
            ensure!(member.is_none(), "{variable} is not a mapping of structs");
            return Ok(format!("{variable} (slot {})", entry["slot"].as_str().unwrap_or("?")));
        }
        while ty["encoding"] == "mapping" {
            ty = &types[ty["value"].as_str().context("a mapping without a value type")?];
        }
        let keys = |t: &Value| "[…]".repeat(t["label"].as_str().unwrap_or("").matches("mapping(").count());
        let brackets = keys(&types[entry["type"].as_str().unwrap_or_default()]);
        match member {
            None => {
                ensure!(ty["numberOfBytes"] == "32" || ty["members"].is_null(), "{name} names a struct, not a slot");
                Ok(format!("{variable}{brackets}"))
            }
            Some(member) => {
                let slot = ty["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| m["label"] == member)
                    .and_then(|m| m["slot"].as_str())
                    .with_context(|| format!("no member {member} in {variable}'s struct"))?;
                Ok(format!("{variable}{brackets} slot {slot}"))
            }
        }
    }
}

/// Gas as the tables and notes write it: 252,779.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}
