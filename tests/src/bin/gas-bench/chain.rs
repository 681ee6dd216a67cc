//! The bench's own chain client: a fresh anvil and its dev accounts, forge and npm artifacts read at
//! run time (libraries linked), deployments and transactions through alloy's dynamic ABI with named
//! arguments, each measured by its receipt's `gasUsed`. It knows no contract of its own: what is
//! deployed and called is `contestants.rs`'s business.
//!
//! Arguments are given by parameter name; one the contract does not have is an error, one the contract
//! has and the benchmark does not give is zero (and said so in the notes), so a changed signature shows.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    sync::Mutex,
};

use alloy::{
    contract::{ContractInstance, Interface},
    dyn_abi::{DynSolType, DynSolValue, JsonAbiExt, Specifier},
    hex,
    json_abi::{Function, JsonAbi, Param},
    network::TransactionBuilder,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, B256, Bytes, I256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;

/// Relative to the repository root; `make tools` installs it.
const ANVIL: &str = "anvil/node_modules/.bin/anvil";

/// EIP-170: the largest contract code mainnet accepts. anvil runs without the limit so that an
/// oversized contract is still measured; the report flags it.
const CODE_SIZE_LIMIT: usize = 24_576;

/// A fresh anvil (stopped when this is dropped), its dev accounts, and the repository root that
/// artifacts are read from.
pub struct Chain {
    pub root: PathBuf,
    pub url: String,
    pub accounts: Vec<Account>,
    /// Things worth saying once (defaulted arguments, oversized code), printed at the end.
    notes: Mutex<BTreeSet<String>>,
    _anvil: AnvilInstance,
}

/// A dev account, a provider that signs its transactions with its key, and the key itself (for what an
/// account signs off chain, such as a monitor's report).
#[derive(Clone)]
pub struct Account {
    pub address: Address,
    pub rpc: DynProvider,
    pub signer: PrivateKeySigner,
}

impl Chain {
    pub fn start(root: &Path) -> Result<Self> {
        let bin = root.join(ANVIL);
        ensure!(bin.exists(), "{} is missing: run `make tools`", bin.display());
        let anvil = Anvil::at(&bin)
            .arg("--disable-code-size-limit")
            .try_spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let url = anvil.endpoint();
        let accounts = anvil
            .keys()
            .iter()
            .map(|key| {
                let signer = PrivateKeySigner::from(key.clone());
                let rpc = ProviderBuilder::new().wallet(signer.clone()).connect_http(url.parse()?).erased();
                Ok(Account { address: signer.address(), rpc, signer })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { root: root.to_path_buf(), url, accounts, notes: Mutex::new(BTreeSet::new()), _anvil: anvil })
    }

    /// anvil's dev account `i`: 0 admin, 1 customer, 2 provider, 3 provider payout, 4 and 5 the monitor
    /// comparison's second providers (5 the monitor), 9 operator.
    pub fn account(&self, i: usize) -> Account {
        self.accounts[i].clone()
    }

    fn note(&self, note: String) {
        if let Ok(mut notes) = self.notes.lock() {
            notes.insert(note);
        }
    }

    /// What was noted so far, in order.
    pub fn noted(&self) -> Result<BTreeSet<String>> {
        Ok(self.notes.lock().map_err(|_| anyhow!("notes lock poisoned"))?.clone())
    }

    /// A forge artifact: `<out>/<name>.sol/<name>.json`.
    pub fn artifact(&self, out: &str, name: &str) -> Result<Artifact> {
        Artifact::load(&self.root.join(out).join(format!("{name}.sol")).join(format!("{name}.json")))
    }

    /// Moves chain time on and mines a block.
    pub async fn advance(&self, seconds: u64) -> Result<()> {
        let rpc = &self.accounts[0].rpc;
        rpc.raw_request::<_, Value>("evm_increaseTime".into(), (seconds,)).await?;
        rpc.raw_request::<_, Value>("evm_mine".into(), ()).await?;
        Ok(())
    }

    /// How many transactions `account` has sent (its nonce).
    pub async fn nonce(&self, account: &Account) -> Result<u64> {
        Ok(account.rpc.get_transaction_count(account.address).await?)
    }

    /// The latest block's timestamp.
    pub async fn latest_timestamp(&self) -> Result<u64> {
        let block: Value = self.accounts[0].rpc.raw_request("eth_getBlockByNumber".into(), ("latest", false)).await?;
        let hex = block["timestamp"].as_str().context("a block without a timestamp")?;
        u64::from_str_radix(hex.trim_start_matches("0x"), 16).context("the block's timestamp")
    }

    /// Deploys with named constructor arguments and the given libraries linked; returns the contract
    /// and the deployment's gas.
    pub async fn deploy(
        &self,
        art: &Artifact,
        from: &Account,
        args: &[(&str, String)],
        libraries: &[(&str, Address)],
        value: U256,
    ) -> Result<(Deployed<'_>, u64)> {
        let mut code = art.linked(libraries)?;
        let values = match art.abi.constructor() {
            Some(ctor) => encode_args(self, &ctor.inputs, &format!("{} constructor", art.name), args)?,
            None => {
                ensure!(args.is_empty(), "{} has no constructor arguments", art.name);
                Vec::new()
            }
        };
        if let Some(ctor) = art.abi.constructor() {
            code.extend(ctor.abi_encode_input(&values)?);
        }
        if art.runtime_size > CODE_SIZE_LIMIT {
            self.note(format!(
                "{}'s runtime code is {} bytes, over the EIP-170 limit of {CODE_SIZE_LIMIT}: it could not be deployed on mainnet (anvil runs here without the limit)",
                art.name, art.runtime_size
            ));
        }
        let tx =
            TransactionRequest::default().with_from(from.address).with_deploy_code(Bytes::from(code)).with_value(value);
        let label = format!("deploying {}", art.name);
        let pending = match from.rpc.send_transaction(tx).await {
            Ok(pending) => pending,
            Err(err) => bail!(
                "{label} failed: {}",
                explain(&art.abi, err.as_error_resp().and_then(|e| e.as_revert_data()), &err)
            ),
        };
        let receipt = pending.get_receipt().await?;
        check(&receipt, &label)?;
        let address =
            receipt.contract_address.with_context(|| format!("{label}: no contract address in the receipt"))?;
        let deployed =
            Deployed { name: art.name.clone(), address, interface: Interface::new(art.abi.clone()), chain: self };
        Ok((deployed, receipt.gas_used))
    }

    /// A contract already on chain (deployed by another contract).
    pub fn at(&self, art: &Artifact, address: Address) -> Deployed<'_> {
        Deployed { name: art.name.clone(), address, interface: Interface::new(art.abi.clone()), chain: self }
    }

    /// A plain ETH transfer (a contract's `receive`); returns its gas.
    pub async fn transfer(&self, from: &Account, to: Address, value: U256) -> Result<u64> {
        let tx = TransactionRequest::default().with_from(from.address).with_to(to).with_value(value);
        let receipt = from.rpc.send_transaction(tx).await?.get_receipt().await?;
        check(&receipt, &format!("transfer to {to}"))?;
        Ok(receipt.gas_used)
    }
}

pub struct Artifact {
    pub name: String,
    pub abi: JsonAbi,
    /// Creation code as hex, with `__$…$__` placeholders where libraries go.
    bytecode: String,
    /// (library name, byte offset) of every placeholder.
    links: Vec<(String, usize)>,
    runtime_size: usize,
}

impl Artifact {
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).with_context(|| {
            format!(
                "{} is missing: run `make bench-gas` (it builds both forge projects and installs the peers)",
                path.display()
            )
        })?;
        let json: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
        let abi: JsonAbi =
            serde_json::from_value(json["abi"].clone()).with_context(|| format!("the ABI in {}", path.display()))?;
        let bytecode =
            json["bytecode"]["object"].as_str().with_context(|| format!("no bytecode in {}", path.display()))?;
        let bytecode = bytecode.trim_start_matches("0x").to_owned();
        ensure!(!bytecode.is_empty(), "{} has empty bytecode (an interface or abstract contract?)", path.display());
        let mut links = Vec::new();
        if let Some(files) = json["bytecode"]["linkReferences"].as_object() {
            for libraries in files.values() {
                for (library, refs) in libraries.as_object().into_iter().flatten() {
                    for r in refs.as_array().into_iter().flatten() {
                        links.push((
                            library.clone(),
                            r["start"].as_u64().context("link reference without start")? as usize,
                        ));
                    }
                }
            }
        }
        let runtime = json["deployedBytecode"]["object"].as_str().unwrap_or_default().trim_start_matches("0x");
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_owned();
        Ok(Self { name, abi, bytecode, links, runtime_size: runtime.len() / 2 })
    }

    /// The creation code with each library's address written over its placeholders.
    fn linked(&self, libraries: &[(&str, Address)]) -> Result<Vec<u8>> {
        let mut code = self.bytecode.clone();
        for (library, start) in &self.links {
            let address = libraries
                .iter()
                .find(|(name, _)| name == library)
                .map(|(_, a)| *a)
                .with_context(|| format!("{} needs library {library} linked", self.name))?;
            code.replace_range(start * 2..start * 2 + 40, &hex::encode(address));
        }
        hex::decode(&code).with_context(|| format!("{}'s bytecode has unlinked placeholders", self.name))
    }
}

/// A deployed contract, callable from any account.
pub struct Deployed<'c> {
    pub name: String,
    pub address: Address,
    interface: Interface,
    chain: &'c Chain,
}

/// What a transaction returned (as a call just before it) and its gas.
pub struct Sent {
    pub gas: u64,
    pub output: Vec<DynSolValue>,
    /// The transaction's input, for the floor's calldata cost.
    pub calldata: Bytes,
    /// The signed transaction as the node holds it (EIP-2718 bytes): what a rollup posts to L1 and
    /// charges a data fee for.
    pub raw: Bytes,
}

impl Sent {
    /// The first return value, a uint (an id).
    pub fn id(&self) -> Result<U256> {
        first_uint(&self.output).context("the first return value")
    }
}

impl Deployed<'_> {
    pub fn has(&self, function_name: &str) -> bool {
        self.interface.abi().function(function_name).is_some()
    }

    pub fn clone_at(&self, address: Address) -> Self {
        Deployed { name: self.name.clone(), address, interface: self.interface.clone(), chain: self.chain }
    }

    fn instance(&self, from: &Account) -> ContractInstance<DynProvider> {
        ContractInstance::new(self.address, from.rpc.clone(), self.interface.clone())
    }

    /// Sends `function` (a name, or a full signature for an overloaded one) with named arguments from
    /// `from`, after an `eth_call` of the same that yields the return values (and a revert's reason).
    pub async fn send(
        &self,
        from: &Account,
        function_name: &str,
        args: &[(&str, String)],
        value: U256,
    ) -> Result<Sent> {
        let abi = self.interface.abi();
        let f = function(abi, function_name)?;
        let label = format!("{}.{}", self.name, f.name);
        let values = encode_args(self.chain, &f.inputs, &label, args)?;
        let instance = self.instance(from);
        let call = instance.function_from_selector(&f.selector(), &values)?.from(from.address).value(value);
        let output = match call.call().await {
            Ok(output) => output,
            Err(err) => bail!("{label} would revert: {}", explain(abi, err.as_revert_data(), &err)),
        };
        let receipt = call.send().await.with_context(|| format!("sending {label}"))?.get_receipt().await?;
        check(&receipt, &label)?;
        let raw: Bytes = from
            .rpc
            .raw_request("eth_getRawTransactionByHash".into(), (receipt.transaction_hash,))
            .await
            .with_context(|| format!("the signed bytes of {label}"))?;
        Ok(Sent { gas: receipt.gas_used, output, calldata: call.calldata().clone(), raw })
    }

    /// Why `calldata` would revert if `from` sent it now (None if it would not).
    pub async fn revert_reason(&self, from: &Account, calldata: &Bytes) -> Option<String> {
        let tx = TransactionRequest::default().from(from.address).to(self.address).input(calldata.clone().into());
        match from.rpc.call(tx).await {
            Ok(_) => None,
            Err(err) => Some(explain(self.interface.abi(), err.as_error_resp().and_then(|e| e.as_revert_data()), &err)),
        }
    }

    /// A call's input (selector and arguments), to be sent inside another call (`batch`).
    pub fn encode(&self, function_name: &str, args: &[(&str, String)]) -> Result<Bytes> {
        let f = function(self.interface.abi(), function_name)?;
        let label = format!("{}.{}", self.name, f.name);
        let values = encode_args(self.chain, &f.inputs, &label, args)?;
        Ok(f.abi_encode_input(&values).with_context(|| format!("encoding {label}"))?.into())
    }

    /// A view call with named arguments.
    pub async fn view(&self, function_name: &str, args: &[(&str, String)]) -> Result<Vec<DynSolValue>> {
        let abi = self.interface.abi();
        let f = function(abi, function_name)?;
        let label = format!("{}.{}", self.name, f.name);
        let values = encode_args(self.chain, &f.inputs, &label, args)?;
        let instance = self.instance(&self.chain.accounts[0]);
        let call = instance.function_from_selector(&f.selector(), &values)?;
        match call.call().await {
            Ok(output) => Ok(output),
            Err(err) => bail!("{label} reverted: {}", explain(abi, err.as_revert_data(), &err)),
        }
    }

    /// A view call that returns one struct, as its fields by name.
    pub async fn view_struct(
        &self,
        function_name: &str,
        args: &[(&str, String)],
    ) -> Result<BTreeMap<String, DynSolValue>> {
        let f = function(self.interface.abi(), function_name)?;
        let label = format!("{}.{}", self.name, f.name);
        let [output] = f.outputs.as_slice() else { bail!("{label} does not return one value") };
        ensure!(output.ty == "tuple", "{label} does not return a struct");
        let values = self.view(function_name, args).await?;
        let Some(DynSolValue::Tuple(fields)) = values.into_iter().next() else { bail!("{label} returned no struct") };
        ensure!(fields.len() == output.components.len(), "{label} returned {} fields", fields.len());
        Ok(output.components.iter().map(|c| c.name.clone()).zip(fields).collect())
    }
}

/// A uint field of a struct read with [`Deployed::view_struct`].
pub fn field_uint(fields: &BTreeMap<String, DynSolValue>, name: &str) -> Result<U256> {
    fields.get(name).and_then(DynSolValue::as_uint).map(|(v, _)| v).with_context(|| format!("no uint field {name}"))
}

pub fn first_uint(values: &[DynSolValue]) -> Result<U256> {
    values.first().and_then(DynSolValue::as_uint).map(|(v, _)| v).context("expected a uint")
}

fn check(receipt: &TransactionReceipt, label: &str) -> Result<()> {
    ensure!(receipt.status(), "{label} reverted (tx {}, gas {})", receipt.transaction_hash, receipt.gas_used);
    Ok(())
}

/// A function by name, or by full signature (`release(address)`) when the name is overloaded.
pub fn function<'a>(abi: &'a JsonAbi, name: &str) -> Result<&'a Function> {
    if name.contains('(') {
        return abi
            .functions()
            .find(|f| f.signature() == name)
            .with_context(|| format!("no function {name} in the ABI"));
    }
    match abi.function(name).map(Vec::as_slice) {
        Some([f]) => Ok(f),
        Some(_) => bail!("{name} is overloaded: give its full signature"),
        None => bail!("no function {name} in the ABI (has the contract's interface changed?)"),
    }
}

/// The reason of a revert: a custom error of the ABI with its values, Error(string), Panic, or the raw data.
fn explain(abi: &JsonAbi, data: Option<Bytes>, err: &dyn std::fmt::Display) -> String {
    let Some(data) = data else {
        return err.to_string();
    };
    if data.len() >= 4
        && let Some(error) = abi.errors().find(|e| e.selector().as_slice() == &data[..4])
        && let Ok(values) = error.abi_decode_input(&data[4..])
    {
        return format!("{}({values:?})", error.name);
    }
    alloy::sol_types::decode_revert_reason(&data).unwrap_or_else(|| format!("revert data {data}"))
}

// --- named arguments ---------------------------------------------------------------------------------

/// Named arguments: values as text (numbers in decimal, addresses in hex, `true`, `[1,2]`), parsed
/// against each parameter's type.
pub fn args<V: ToString>(pairs: &[(&'static str, V)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

pub trait With {
    fn with(self, key: &'static str, value: impl ToString) -> Self;
}

impl With for Vec<(&'static str, String)> {
    fn with(mut self, key: &'static str, value: impl ToString) -> Self {
        self.push((key, value.to_string()));
        self
    }
}

/// Builds the positional values of `inputs` from named arguments. A struct parameter is built from its
/// fields (`params.sender`, or `sender` when unambiguous) unless given whole. A name the function does not
/// have is an error; a parameter not given is zero and noted.
pub fn encode_args(chain: &Chain, params: &[Param], label: &str, args: &[(&str, String)]) -> Result<Vec<DynSolValue>> {
    let mut used = BTreeSet::new();
    let mut defaulted = Vec::new();
    let values = params
        .iter()
        .map(|p| arg_value(p, "", args, &mut used, &mut defaulted))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("arguments of {label}"))?;
    for (key, _) in args {
        ensure!(used.contains(key), "{label} has no parameter {key} (has the contract's interface changed?)");
    }
    if !defaulted.is_empty() {
        chain.note(format!("{label}: not given, so zero: {}", defaulted.join(", ")));
    }
    Ok(values)
}

fn arg_value<'a>(
    param: &Param,
    prefix: &str,
    args: &'a [(&str, String)],
    used: &mut BTreeSet<&'a str>,
    defaulted: &mut Vec<String>,
) -> Result<DynSolValue> {
    let path = if prefix.is_empty() { param.name.clone() } else { format!("{prefix}.{}", param.name) };
    let ty: DynSolType = param.resolve().with_context(|| format!("type of {path}"))?;
    let given = args
        .iter()
        .find(|(k, _)| *k == path)
        .or_else(|| args.iter().find(|(k, _)| !param.name.is_empty() && *k == param.name));
    if let Some((key, text)) = given {
        used.insert(key);
        return ty.coerce_str(text).with_context(|| format!("{path} = {text:?} is not a {ty}"));
    }
    if param.ty == "tuple" {
        let fields =
            param.components.iter().map(|c| arg_value(c, &path, args, used, defaulted)).collect::<Result<Vec<_>>>()?;
        return Ok(DynSolValue::Tuple(fields));
    }
    defaulted.push(if path.is_empty() { format!("<unnamed {ty}>") } else { path });
    zero(&ty)
}

fn zero(ty: &DynSolType) -> Result<DynSolValue> {
    Ok(match ty {
        DynSolType::Bool => DynSolValue::Bool(false),
        DynSolType::Int(bits) => DynSolValue::Int(I256::ZERO, *bits),
        DynSolType::Uint(bits) => DynSolValue::Uint(U256::ZERO, *bits),
        DynSolType::FixedBytes(size) => DynSolValue::FixedBytes(B256::ZERO, *size),
        DynSolType::Address => DynSolValue::Address(Address::ZERO),
        DynSolType::Bytes => DynSolValue::Bytes(Vec::new()),
        DynSolType::String => DynSolValue::String(String::new()),
        DynSolType::Array(_) => DynSolValue::Array(Vec::new()),
        DynSolType::FixedArray(inner, n) => {
            DynSolValue::FixedArray((0..*n).map(|_| zero(inner)).collect::<Result<_>>()?)
        }
        DynSolType::Tuple(items) => DynSolValue::Tuple(items.iter().map(zero).collect::<Result<_>>()?),
        other => bail!("no zero value for {other}"),
    })
}

pub fn package_version(dir: &Path) -> Result<String> {
    let path = dir.join("package.json");
    let text =
        fs::read_to_string(&path).with_context(|| format!("{} is missing: run `make bench-gas`", path.display()))?;
    let manifest: Value = serde_json::from_str(&text)?;
    manifest["version"].as_str().map(str::to_owned).context("package.json without a version")
}
