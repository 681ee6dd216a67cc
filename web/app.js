// The customer page: connect a wallet, sign an offer into the escrow, follow the agreement until it
// is settled, stop it. Talks only to the backend (same origin) and to the wallet (EIP-1193).

const STATUSES = [
  ['signed', 'Signed', 'Your deposit is locked in the escrow.'],
  ['deploying', 'Starting', 'Starting your conference room.'],
  ['activating', 'Activating', 'The room answers; the service is countersigning on-chain.'],
  ['active', 'Running', 'Your conference is running.'],
  ['undeploying', 'Stopping', 'Stopping the conference room.'],
  ['settling', 'Settling', 'Settling on-chain: charge for the seconds used, refund for the rest.'],
  ['settled', 'Settled', 'Done: the provider was paid and the rest was refunded.'],
];
const REFUNDED = ['refunded', 'Refunded', 'The conference never started: your whole deposit was refunded.'];
const STOPPABLE = new Set(['signed', 'deploying', 'activating', 'active']);
const TERMINAL = new Set(['settled', 'refunded']);
const FULL_AVAILABILITY_BPS = 10000;
const MIN_AVAILABILITY_BPS = 7500;
const POLL_MS = 1000;
const RECEIPT_POLL_MS = 500;

// Readable sentences for the escrow's custom errors, when the backend publishes their selectors
// in /api/config as `errors: {"0x12345678": "Escrow_TermsNotOpen", ...}`.
const CONTRACT_ERRORS = {
  Escrow_TermsNotOpen: 'This offer is no longer open (its terms were retired or changed by a vote): reload the page.',
  Escrow_NoRegionAllowed: 'This offer does not serve any of the regions you allowed.',
  Escrow_GdprUnavailable: 'Not every provider of this offer is GDPR-compliant.',
  Escrow_WrongDeposit: 'The deposit does not match the offer any more: reload the page and try again.',
  Escrow_UnknownAgreement: 'The escrow contract does not know this agreement.',
  Escrow_WrongStatus: 'The agreement has already moved on (it may already be stopped): the page will show where it stands.',
  Escrow_NotCustomer: 'Only the account that signed this agreement can stop it.',
  Escrow_Paused: 'The escrow contract is paused for maintenance: no new agreement can be signed right now.',
};

// ---------------------------------------------------------------------------------------------
// Pure helpers (amounts are BigInt wei; no floating point anywhere near money).
// ---------------------------------------------------------------------------------------------

const WEI_PER_ETH = 10n ** 18n;

/** 3600000000000000n → "0.0036 ETH": exact, trailing zeros trimmed. */
export function formatEth(wei, unit = 'ETH') {
  const value = BigInt(wei);
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const whole = abs / WEI_PER_ETH;
  const fraction = (abs % WEI_PER_ETH).toString().padStart(18, '0').replace(/0+$/, '');
  const text = fraction ? `${whole}.${fraction}` : `${whole}`;
  return `${negative ? '-' : ''}${text}${unit ? ` ${unit}` : ''}`;
}

/** 9876 → "98.76%", 10000 → "100%". */
export function formatBps(bps) {
  const value = Number(bps);
  const whole = Math.trunc(value / 100);
  const rest = value % 100;
  return rest === 0 ? `${whole}%` : `${whole}.${String(rest).padStart(2, '0').replace(/0$/, '')}%`;
}

/** 3725 → "1 h 2 min 5 s", 600 → "10 min", 0 → "0 s". */
export function formatDuration(totalSeconds) {
  let s = Math.max(0, Math.floor(Number(totalSeconds)));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = [];
  if (h) parts.push(`${h} h`);
  if (m) parts.push(`${m} min`);
  if (s || parts.length === 0) parts.push(`${s} s`);
  return parts.join(' ');
}

/** 3725 → "1:02:05", 65 → "1:05". */
export function formatClock(totalSeconds) {
  const s = Math.max(0, Math.floor(Number(totalSeconds)));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** Unix seconds → local date and time. */
export function formatTime(unixSeconds) {
  return new Date(Number(unixSeconds) * 1000).toLocaleString(undefined, {
    dateStyle: 'medium',
    timeStyle: 'medium',
  });
}

/** The calldata of a one-uint256-argument call: selector + the argument as 32 big-endian bytes. */
/** ABI-encodes a call whose arguments are all static words (uint, bool). */
export function encodeCall(selector, ...args) {
  if (!/^0x[0-9a-fA-F]{8}$/.test(selector)) throw new UserError('The service sent an invalid function selector.');
  const words = args.map((argument) => {
    const value = BigInt(argument);
    if (value < 0n || value >= 2n ** 256n) throw new UserError('An argument does not fit in a uint256.');
    return value.toString(16).padStart(64, '0');
  });
  return selector.toLowerCase() + words.join('');
}

export function shortAddress(address) {
  return address && address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address || '';
}

function sameAddress(a, b) {
  return typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
}

/** An error whose message is already a sentence for the customer. */
class UserError extends Error {}

// ---------------------------------------------------------------------------------------------
// Errors from the wallet, the chain and the service, turned into sentences.
// ---------------------------------------------------------------------------------------------

function errorCode(err) {
  return err?.code ?? err?.data?.originalError?.code ?? err?.error?.code;
}

function revertData(err) {
  for (const candidate of [err?.data, err?.data?.data, err?.data?.originalError?.data, err?.error?.data]) {
    if (typeof candidate === 'string' && /^0x[0-9a-fA-F]{8}/.test(candidate)) return candidate;
  }
  return null;
}

function contractErrorSentence(err) {
  const data = revertData(err);
  const name = data && state.config?.errors?.[data.slice(0, 10).toLowerCase()];
  return name ? CONTRACT_ERRORS[name] ?? `The escrow contract refused the transaction (${name}).` : null;
}

/** One clear sentence for any error, for a given action ("sign", "stop", "connect"). */
function describeError(err, action) {
  if (err instanceof UserError) return err.message;
  const code = errorCode(err);
  if (code === 4001) {
    return {
      connect: 'You declined the connection request in your wallet. Click “Connect wallet” to try again.',
      sign: 'You rejected the transaction in your wallet: nothing was signed and no funds moved.',
      stop: 'You rejected the stop transaction in your wallet: the conference keeps running.',
      chain: 'You declined to switch networks in your wallet; this service only works on its own network.',
    }[action] ?? 'You rejected the request in your wallet.';
  }
  if (code === -32002) return 'Your wallet already has a request waiting for you: open the wallet to answer it.';
  if (code === 4100) return 'Your wallet has not authorised this page yet: connect the wallet again.';
  if (code === 4900 || code === 4901) return 'Your wallet is disconnected from the network: check the wallet, then try again.';
  const contract = contractErrorSentence(err);
  if (contract) return contract;
  const message = String(err?.message ?? err ?? '').split('\n')[0].slice(0, 240);
  if (/insufficient funds/i.test(message)) {
    return 'Your account does not have enough ETH for the deposit plus the transaction fee.';
  }
  if (/revert/i.test(message)) {
    return action === 'stop'
      ? 'The escrow contract refused to stop this agreement: it may already be stopped, or this account is not the one that signed it.'
      : 'The escrow contract refused the transaction: the offer may have been retired or changed. Reload the page and try again.';
  }
  if (err instanceof TypeError && /fetch|network/i.test(message)) {
    return 'The service cannot be reached: check your connection, then try again.';
  }
  return message ? `Something went wrong: ${message.replace(/[.\s]*$/, '')}.` : 'Something went wrong; please try again.';
}

// ---------------------------------------------------------------------------------------------
// Page state and elements.
// ---------------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const el = {
  connect: $('connect'),
  walletInfo: $('wallet-info'),
  account: $('account'),
  balance: $('balance'),
  network: $('network'),
  error: $('error'),
  notice: $('notice'),
  offers: $('offers'),
  offersLoading: $('offers-loading'),
  agreement: $('agreement'),
  agreementTitle: $('agreement-title'),
  status: $('status'),
  statusText: $('status-text'),
  waiting: $('waiting'),
  stepper: $('stepper'),
  live: $('live'),
  joinUrl: $('join-url'),
  startedAt: $('started-at'),
  runningFor: $('running-for'),
  costSoFar: $('cost-so-far'),
  expiresAt: $('expires-at'),
  facts: $('agreement-facts'),
  settlement: $('settlement'),
  availabilityNote: $('availability-note'),
  usedSeconds: $('used-seconds'),
  availability: $('availability'),
  charge: $('charge'),
  refund: $('refund'),
  transactionsBox: $('transactions-box'),
  transactions: $('transactions'),
  stop: $('stop'),
  stopSigned: $('stop-signed'),
  stopHint: $('stop-hint'),
  newAgreement: $('new-agreement'),
};

const state = {
  config: null,
  offers: [],
  offersRendered: null, // the offers list the page shows
  provider: null,
  account: null,
  chainOk: false,
  busy: false, // a wallet request or a transaction is under way
  following: null, // agreement id (BigInt) being followed
  agreement: null, // its last JSON from the service
  pollTimer: null,
  pollGeneration: 0,
  notFoundSince: null, // when the service first answered 404 for it
  justSigned: false, // signed from this page: the chain has it even if the service has not seen it
  serviceDown: false,
  terminalPolls: 0,
  stopSentFor: null,
  tickTimer: null,
  clockOffset: 0, // chain time − this computer's time, in seconds, when the service tells it
};

function showError(message) {
  el.error.textContent = message || '';
  if (message) el.error.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

function showNotice(message) {
  el.notice.textContent = message || '';
}

// ---------------------------------------------------------------------------------------------
// The service's API.
// ---------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET `path`, or POST `payload` as JSON to it; the answer's JSON, or an ApiError with the service's reason. */
async function api(path, payload) {
  let response;
  const init = { headers: { accept: 'application/json' }, cache: 'no-store' };
  if (payload !== undefined) {
    init.method = 'POST';
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(payload);
  }
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'The service cannot be reached: check that it is running and your connection works.');
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // fall through: a non-JSON answer is reported below
  }
  if (!response.ok) {
    const detail = body && typeof body.error === 'string' ? body.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, `The service answered with an error (${detail}).`);
  }
  if (body === null) throw new ApiError(response.status, 'The service sent an answer this page cannot read.');
  return body;
}

// ---------------------------------------------------------------------------------------------
// The wallet: EIP-6963 discovery with window.ethereum as the fallback.
// ---------------------------------------------------------------------------------------------

const announced = [];
window.addEventListener('eip6963:announceProvider', (event) => {
  const detail = event.detail;
  if (detail && detail.provider && typeof detail.provider.request === 'function') {
    if (!announced.some((d) => d.provider === detail.provider)) announced.push(detail);
  }
});

function requestProviders() {
  window.dispatchEvent(new Event('eip6963:requestProvider'));
}
requestProviders();

async function discoverProvider() {
  if (announced.length === 0) {
    requestProviders();
    // Wallets answer synchronously or on the next task; give slow ones a moment.
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (announced.length > 0) return announced[0].provider;
  if (window.ethereum && typeof window.ethereum.request === 'function') return window.ethereum;
  return null;
}

function walletName() {
  const info = announced.find((d) => d.provider === state.provider)?.info;
  return info?.name || 'your wallet';
}

async function wallet(method, params) {
  if (!state.provider) throw new UserError('Connect your wallet first.');
  return params === undefined
    ? state.provider.request({ method })
    : state.provider.request({ method, params });
}

const toHexChainId = (id) => `0x${Number(id).toString(16)}`;

async function connect() {
  showError('');
  if (!state.config) {
    showError('The page could not load the service settings yet: reload the page and try again.');
    return false;
  }
  el.connect.disabled = true;
  try {
    if (!state.provider) {
      const provider = await discoverProvider();
      if (!provider) {
        throw new UserError(
          'No Ethereum wallet was found in this browser. Install a wallet extension such as MetaMask, then reload this page.',
        );
      }
      state.provider = provider;
      subscribe(provider);
    }
    showNotice(`Waiting for ${walletName()} to share an account…`);
    let accounts;
    try {
      accounts = await wallet('eth_requestAccounts');
    } catch (err) {
      throw new UserError(describeError(err, 'connect'));
    }
    if (!Array.isArray(accounts) || accounts.length === 0) {
      throw new UserError('Your wallet shared no account: unlock it, then click “Connect wallet” again.');
    }
    state.account = accounts[0];
    await ensureChain();
    showNotice('');
    renderWallet();
    await refreshBalance();
    renderOffers();
    renderAgreement();
    return true;
  } catch (err) {
    showNotice('');
    showError(describeError(err, 'connect'));
    renderWallet();
    return false;
  } finally {
    el.connect.disabled = false;
  }
}

/** Makes sure the wallet is on the service's chain, asking it to switch (or add it) if not. */
async function ensureChain() {
  const wanted = Number(state.config.chainId);
  const current = Number.parseInt(await wallet('eth_chainId'), 16);
  if (current === wanted) {
    state.chainOk = true;
    return;
  }
  const chainId = toHexChainId(wanted);
  showNotice(`Asking ${walletName()} to switch to the service's network (chain ${wanted})…`);
  try {
    await wallet('wallet_switchEthereumChain', [{ chainId }]);
  } catch (err) {
    if (errorCode(err) === 4902) {
      try {
        await wallet('wallet_addEthereumChain', [
          {
            chainId,
            chainName: `Conference escrow (chain ${wanted})`,
            rpcUrls: [state.config.rpcUrl],
            nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
          },
        ]);
      } catch (addErr) {
        state.chainOk = false;
        throw new UserError(
          errorCode(addErr) === 4001
            ? 'You declined to add the service’s network to your wallet; this service only works on that network.'
            : `Your wallet could not add the service’s network (chain ${wanted}, ${state.config.rpcUrl}). Add it by hand, then try again.`,
        );
      }
    } else {
      state.chainOk = false;
      throw new UserError(describeError(err, 'chain'));
    }
  }
  const after = Number.parseInt(await wallet('eth_chainId'), 16);
  state.chainOk = after === wanted;
  if (!state.chainOk) {
    throw new UserError(`Your wallet is still on chain ${after}: switch it to chain ${wanted} to continue.`);
  }
}

function subscribe(provider) {
  if (typeof provider.on !== 'function') return;
  provider.on('accountsChanged', (accounts) => {
    state.account = Array.isArray(accounts) && accounts.length > 0 ? accounts[0] : null;
    if (!state.account) showNotice('Your wallet disconnected this page. Connect it again to sign or stop.');
    else showNotice('');
    renderWallet();
    renderOffers();
    renderAgreement();
    refreshBalance();
  });
  provider.on('chainChanged', (chainId) => {
    const wanted = Number(state.config?.chainId);
    state.chainOk = Number.parseInt(chainId, 16) === wanted;
    showNotice(
      state.chainOk || !state.account
        ? ''
        : `Your wallet switched to chain ${Number.parseInt(chainId, 16)}; this service runs on chain ${wanted}. You will be asked to switch back before the next transaction.`,
    );
    renderWallet();
    refreshBalance();
  });
  provider.on('disconnect', () => {
    showNotice('Your wallet lost its connection to the network.');
  });
}

async function refreshBalance() {
  if (!state.provider || !state.account) return;
  try {
    const balance = await wallet('eth_getBalance', [state.account, 'latest']);
    el.balance.textContent = state.chainOk ? formatEth(BigInt(balance)) : `${formatEth(BigInt(balance))} (other network)`;
    el.balance.dataset.wei = BigInt(balance).toString();
  } catch {
    el.balance.textContent = 'unavailable';
    delete el.balance.dataset.wei;
  }
}

function renderWallet() {
  const connected = Boolean(state.account);
  el.walletInfo.hidden = !connected;
  el.connect.textContent = connected ? 'Reconnect wallet' : 'Connect wallet';
  el.connect.classList.toggle('secondary', connected);
  el.account.textContent = connected ? state.account : '';
  el.account.title = connected ? state.account : '';
  el.network.textContent = state.config
    ? state.chainOk
      ? `chain ${state.config.chainId}`
      : `wrong network (this service uses chain ${state.config.chainId})`
    : '';
  if (!connected) {
    el.balance.textContent = '';
    delete el.balance.dataset.wei;
  }
}

// ---------------------------------------------------------------------------------------------
// Transactions.
// ---------------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function sendCall(selector, args, value) {
  const tx = { from: state.account, to: state.config.escrow, data: encodeCall(selector, ...args) };
  if (value !== undefined) tx.value = `0x${BigInt(value).toString(16)}`;
  return wallet('eth_sendTransaction', [tx]);
}

async function waitForReceipt(hash, what) {
  const started = Date.now();
  for (;;) {
    let receipt = null;
    try {
      receipt = await wallet('eth_getTransactionReceipt', [hash]);
    } catch {
      // the wallet's node may hiccup: keep trying
    }
    if (receipt) {
      if (receipt.status === '0x0' || receipt.status === 0) {
        throw new UserError(`The ${what} transaction was reverted by the escrow contract: nothing changed except the transaction fee.`);
      }
      return receipt;
    }
    if (Date.now() - started > 30000) {
      showNotice(`Still waiting for the ${what} transaction to be included in a block (${shortAddress(hash)})…`);
    }
    await sleep(RECEIPT_POLL_MS);
  }
}

async function ensureReady() {
  if (!state.account && !(await connect())) return false;
  try {
    await ensureChain();
    renderWallet();
    return true;
  } catch (err) {
    renderWallet();
    showError(describeError(err, 'chain'));
    return false;
  }
}

function setBusy(busy) {
  state.busy = busy;
  renderOffers();
  renderAgreement();
}

async function signOffer(offer) {
  showError('');
  if (state.busy) return;
  setBusy(true);
  try {
    if (!(await ensureReady())) return;
    const deposit = BigInt(offer.deposit);
    showNotice(`Confirm in ${walletName()}: sign offer ${offer.id} and lock ${formatEth(deposit)} in the escrow.`);
    let hash;
    try {
      // sign(termsId, allowedRegions = 0: any region the offer serves, gdpr = false)
      hash = await sendCall(state.config.calls.sign, [offer.id, 0, 0], deposit);
    } catch (err) {
      throw new UserError(describeError(err, 'sign'));
    }
    showNotice(`Transaction sent (${hash}). Waiting for it to be included in a block…`);
    const receipt = await waitForReceipt(hash, 'signing');
    const topic = String(state.config.events.AgreementSigned).toLowerCase();
    const log = (receipt.logs || []).find(
      (l) => sameAddress(l.address, state.config.escrow) && l.topics?.[0]?.toLowerCase() === topic,
    );
    if (!log || !log.topics[1]) {
      throw new UserError(
        'The transaction was included but the escrow recorded no agreement. Check your wallet’s activity before trying again.',
      );
    }
    const id = BigInt(log.topics[1]);
    showNotice('');
    refreshBalance();
    const url = new URL(window.location.href);
    url.searchParams.set('agreement', id.toString());
    window.history.pushState({ agreement: id.toString() }, '', url);
    follow(id, { justSigned: true });
    el.agreementTitle.focus();
  } catch (err) {
    showNotice('');
    showError(describeError(err, 'sign'));
  } finally {
    setBusy(false);
  }
}

/** Throws unless the connected account is the one that signed `agreement` (if it is known yet). */
function requireCustomer(agreement) {
  if (agreement && !sameAddress(agreement.customer, state.account)) {
    throw new UserError(
      `Only the account that signed this agreement (${agreement.customer}) can stop it. Switch to that account in your wallet.`,
    );
  }
}

async function stopAgreement() {
  showError('');
  const agreement = state.agreement;
  if (state.busy || state.following === null) return;
  setBusy(true);
  try {
    if (!(await ensureReady())) return;
    requireCustomer(agreement);
    const cancelling = !agreement || agreement.status !== 'active';
    showNotice(`Confirm in ${walletName()}: ${cancelling ? 'cancel' : 'stop'} agreement ${state.following}.`);
    let hash;
    try {
      hash = await sendCall(state.config.calls.stop, [state.following]);
    } catch (err) {
      throw new UserError(describeError(err, 'stop'));
    }
    showNotice(`Stop sent (${hash}). Waiting for it to be included in a block…`);
    await waitForReceipt(hash, 'stop');
    state.stopSentFor = state.following;
    el.agreementTitle.focus(); // the Stop button disappears
    showNotice(
      cancelling
        ? 'Cancelled: your deposit is on its way back.'
        : 'Stopped: the service is closing the room and settling. This page updates by itself.',
    );
    refreshBalance();
  } catch (err) {
    showNotice('');
    showError(describeError(err, 'stop'));
  } finally {
    setBusy(false);
  }
}

/** How long the service may take to submit a signed stop, in seconds of chain time. */
const STOP_SIGNATURE_VALID_S = 600;

/** The EIP-712 typed data of the escrow's `Stop`, as `eth_signTypedData_v4` takes it. */
export function stopTypedData(config, agreementId, startedAt, stoppedAt, deadline) {
  return {
    types: {
      EIP712Domain: [
        { name: 'name', type: 'string' },
        { name: 'version', type: 'string' },
        { name: 'chainId', type: 'uint256' },
        { name: 'verifyingContract', type: 'address' },
      ],
      Stop: [
        { name: 'agreementId', type: 'uint256' },
        { name: 'startedAt', type: 'uint40' },
        { name: 'stoppedAt', type: 'uint40' },
        { name: 'deadline', type: 'uint40' },
      ],
    },
    primaryType: 'Stop',
    domain: { name: 'ConferenceEscrow', version: '1', chainId: config.chainId, verifyingContract: config.escrow },
    message: { agreementId: String(agreementId), startedAt, stoppedAt, deadline },
  };
}

/** Stops without a transaction: the customer signs a `Stop`; the service submits it with the settlement. */
async function stopBySignature() {
  showError('');
  const a = state.agreement;
  if (state.busy || !a || a.status !== 'active') return;
  setBusy(true);
  try {
    if (!(await ensureReady())) return;
    requireCustomer(a);
    const stoppedAt = Math.max(a.startedAt, Math.floor(Date.now() / 1000 + (state.clockOffset || 0)));
    const typed = stopTypedData(state.config, a.id, a.startedAt, stoppedAt, stoppedAt + STOP_SIGNATURE_VALID_S);
    showNotice(`Confirm in ${walletName()}: sign that you stop agreement ${a.id} now. Signing costs no gas.`);
    let signature;
    try {
      signature = await wallet('eth_signTypedData_v4', [state.account, JSON.stringify(typed)]);
    } catch (err) {
      throw new UserError(describeError(err, 'stop'));
    }
    await api(`/api/agreements/${a.id}/stop`, { stoppedAt, deadline: typed.message.deadline, signature });
    state.stopSentFor = state.following;
    el.agreementTitle.focus(); // the Stop buttons disappear
    showNotice('Stopped: the service is closing the room and submits your signed stop with the settlement.');
  } catch (err) {
    showNotice('');
    showError(err instanceof ApiError ? `Your stop was not accepted. ${err.message}` : describeError(err, 'stop'));
  } finally {
    setBusy(false);
  }
}

// ---------------------------------------------------------------------------------------------
// Offers.
// ---------------------------------------------------------------------------------------------

function node(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') element.className = value;
    else if (key === 'text') element.textContent = value;
    else if (key.startsWith('data-') || key.startsWith('aria-') || key === 'id' || key === 'type' || key === 'role') {
      element.setAttribute(key, value === true ? '' : String(value));
    } else element[key] = value;
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) element.append(child);
  }
  return element;
}

function amount(wei) {
  return node('span', { class: 'amount', 'data-wei': wei.toString(), text: formatEth(wei) });
}

function facts(pairs) {
  return pairs.flatMap(([term, value]) => [node('dt', { text: term }), node('dd', {}, value)]);
}

function signLabel(offer) {
  return state.account ? `Sign and lock ${formatEth(BigInt(offer.deposit))}` : 'Connect wallet and sign';
}

function renderOffers() {
  if (!state.config) return;
  if (state.offersRendered === state.offers) {
    // Update the buttons in place, so that keyboard focus stays where it is.
    for (const button of el.offers.querySelectorAll('button[data-offer-id]')) {
      const offer = state.offers.find((o) => String(o.id) === button.dataset.offerId);
      if (offer) button.textContent = signLabel(offer);
      button.disabled = state.busy;
    }
    return;
  }
  state.offersRendered = state.offers;
  // This page signs the models whose deposit the terms fix; buying minutes and reserving windows come
  // with the full web app.
  const offers = state.offers.filter((o) => o.open && (o.model === 'dynamicPrice' || o.model === 'fixedPrice'));
  el.offersLoading.hidden = true;
  if (offers.length === 0) {
    el.offers.replaceChildren(node('li', { class: 'muted', text: 'No offer is available at the moment. Please come back later.' }));
    return;
  }
  const signId = offers.some((o) => String(o.id) === '1') ? '1' : String(offers[0].id);
  el.offers.replaceChildren(
    ...offers.map((offer) => {
      const price = BigInt(offer.price);
      const deposit = BigInt(offer.deposit);
      const dynamic = offer.model === 'dynamicPrice';
      const titleId = `offer-${offer.id}-title`;
      return node(
        'li',
        { class: 'offer' },
        node('h3', { id: titleId, text: `Offer ${offer.id}` }),
        node('p', { class: 'price', text: dynamic ? `${formatEth(price * 3600n)} per hour` : `${formatEth(price)} per conference` }),
        node(
          'dl',
          { class: 'facts' },
          facts([
            ['Pricing', dynamic ? 'Pay for the seconds you use' : 'Fixed price'],
            ...(dynamic ? [['Per second', amount(price)], ['Per minute', amount(price * 60n)]] : []),
            ['Up to', formatDuration(offer.maxDuration)],
            ['Deposit', amount(deposit)],
          ]),
        ),
        node('p', {
          class: 'hint',
          text: dynamic
            ? `You lock ${formatEth(deposit)} now; you get back everything you do not use.`
            : `You pay ${formatEth(deposit)} now; you get it all back if the conference never starts or runs badly.`,
        }),
        node('button', {
          type: 'button',
          id: String(offer.id) === signId ? 'sign' : undefined,
          'data-offer-id': String(offer.id),
          'data-testid': `sign-${offer.id}`,
          text: signLabel(offer),
          disabled: state.busy,
          onclick: () => signOffer(offer),
        }),
      );
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Following an agreement.
// ---------------------------------------------------------------------------------------------

function follow(id, { justSigned = false } = {}) {
  state.following = BigInt(id);
  state.agreement = null;
  state.notFoundSince = Date.now();
  state.justSigned = justSigned;
  state.stopSentFor = null;
  state.terminalPolls = 0;
  state.serviceDown = false;
  state.pollGeneration += 1;
  clearTimeout(state.pollTimer);
  el.agreement.hidden = false;
  el.agreementTitle.textContent = `Agreement ${state.following}`;
  renderAgreement();
  poll(state.pollGeneration);
}

async function poll(generation) {
  if (generation !== state.pollGeneration || state.following === null) return;
  let delay = POLL_MS;
  try {
    const agreement = await api(`/api/agreements/${state.following}`);
    if (generation !== state.pollGeneration) return;
    if (state.agreement?.status !== agreement.status && TERMINAL.has(agreement.status)) showNotice('');
    state.agreement = agreement;
    // If the service says what time the chain has reached, run the clock on chain time.
    if (typeof agreement.chainTime === 'number') state.clockOffset = agreement.chainTime - Date.now() / 1000;
    state.notFoundSince = null;
    state.serviceDown = false;
    renderAgreement();
    if (TERMINAL.has(agreement.status)) {
      // Keep polling a little while the last transaction hash may still be arriving.
      const tx = agreement.transactions || {};
      const complete = agreement.status === 'refunded' || tx.settle;
      state.terminalPolls = (state.terminalPolls || 0) + 1;
      if (complete || state.terminalPolls > 10) return;
      delay = 2000;
    }
  } catch (err) {
    if (generation !== state.pollGeneration) return;
    if (err instanceof ApiError && err.status === 404) {
      state.notFoundSince ??= Date.now();
      state.serviceDown = false;
      const waited = Date.now() - state.notFoundSince;
      if (waited > 30000) delay = 3000;
    } else if (err instanceof ApiError && err.status === 400) {
      showError(`“${state.following}” is not a valid agreement number. Check the link you followed.`);
      return;
    } else {
      state.serviceDown = true;
      delay = 3000;
    }
    renderAgreement();
  }
  state.pollTimer = setTimeout(() => poll(generation), delay);
}

function renderStepper(status) {
  const steps = status === 'refunded' ? [STATUSES[0], REFUNDED] : STATUSES;
  const index = steps.findIndex(([key]) => key === status);
  el.stepper.replaceChildren(
    ...steps.map(([key, label], i) => {
      const done = index >= 0 && (i < index || TERMINAL.has(status));
      const current = i === index && !TERMINAL.has(status);
      const item = node(
        'li',
        {
          class: done ? 'done' : current ? 'current' : 'todo',
          'data-step': key,
          'aria-current': current ? 'step' : undefined,
        },
        node('strong', { text: label }),
        ' ',
        node('span', { class: 'step-name', text: `(${key})` }),
        node('span', { class: 'visually-hidden', text: done ? ' (done)' : current ? ' (in progress)' : '' }),
      );
      return item;
    }),
  );
}

function renderAgreement() {
  const a = state.agreement;
  if (state.following === null) {
    el.agreement.hidden = true;
    return;
  }
  el.agreement.hidden = false;

  // Status line.
  const status = a?.status ?? '';
  el.status.textContent = status;
  el.status.dataset.status = status;
  const known = [...STATUSES, REFUNDED].find(([key]) => key === status);
  el.statusText.textContent =
    status === 'settled' && a.charged === '0'
      ? 'Done: nothing was charged; your whole deposit was refunded.'
      : known
        ? known[2]
        : '';
  el.waiting.hidden = Boolean(a);
  if (!a) {
    el.waiting.textContent = state.serviceDown
      ? 'The service is not answering right now; retrying…'
      : Date.now() - (state.notFoundSince ?? Date.now()) > 30000 && !state.justSigned
        ? `The service has not seen agreement ${state.following} yet. If you have just signed it, wait a moment; otherwise check the link.`
        : 'Waiting for the service to see your agreement…';
  } else if (state.serviceDown) {
    el.waiting.hidden = false;
    el.waiting.textContent = 'The service is not answering right now; the status below may be out of date. Retrying…';
  }
  // Before the service has answered, what we know from the chain: just signed, or nothing yet.
  renderStepper(a ? status : state.justSigned ? 'signed' : '');

  // Facts about the agreement.
  if (a) {
    const pairs = [
      a.model === 'dynamicPrice'
        ? ['Price', `${formatEth(BigInt(a.price))} per second (${formatEth(BigInt(a.price) * 3600n)} per hour)`]
        : ['Price', `${formatEth(BigInt(a.price))} per conference`],
      ['Deposit', formatEth(BigInt(a.deposit))],
      ['Longest conference', formatDuration(a.duration)],
      ['Signed', a.signedAt ? formatTime(a.signedAt) : '—'],
    ];
    if (a.endedAt) pairs.push(['Ended', formatTime(a.endedAt)]);
    if (a.conference && typeof a.conference.probes === 'number' && a.conference.probes > 0) {
      pairs.push(['Room checks', `${a.conference.probesOk} of ${a.conference.probes} answered`]);
    }
    el.facts.replaceChildren(...facts(pairs));
  } else {
    el.facts.replaceChildren();
  }

  // The live conference.
  const active = a?.status === 'active';
  el.live.hidden = !active;
  if (active) {
    if (a.joinUrl) {
      el.joinUrl.href = a.joinUrl;
      el.joinUrl.textContent = a.joinUrl;
    } else {
      el.joinUrl.removeAttribute('href');
      el.joinUrl.textContent = 'the room link is on its way…';
    }
    el.startedAt.textContent = a.startedAt ? formatTime(a.startedAt) : '—';
    el.expiresAt.textContent = a.endsAt ? formatTime(a.endsAt) : '—';
    tick();
  }
  clearInterval(state.tickTimer);
  if (active && a.startedAt) state.tickTimer = setInterval(tick, 1000);

  // Settlement.
  renderSettlement(a);

  // Transactions.
  const order = ['sign', 'activate', 'stop', 'settle'];
  const txs = Object.entries(a?.transactions ?? {})
    .filter(([, hash]) => typeof hash === 'string' && hash)
    .sort(([x], [y]) => (order.indexOf(x) + 1 || 99) - (order.indexOf(y) + 1 || 99));
  el.transactionsBox.hidden = txs.length === 0;
  el.transactions.replaceChildren(
    ...txs.map(([name, hash]) =>
      node('li', { 'data-tx': name }, node('span', { class: 'muted', text: name }), node('code', { class: 'mono', text: hash })),
    ),
  );

  // Actions.
  const stoppable = a ? STOPPABLE.has(a.status) : state.justSigned;
  const alreadyStopped = state.stopSentFor !== null && state.stopSentFor === state.following;
  el.stop.hidden = !stoppable || alreadyStopped;
  el.stop.textContent = a?.status === 'active' ? 'Stop the conference' : 'Cancel and get a full refund';
  el.stop.disabled = state.busy;
  el.stopSigned.hidden = el.stop.hidden || a?.status !== 'active';
  el.stopSigned.disabled = state.busy;
  const wrongAccount = a && state.account && !sameAddress(a.customer, state.account);
  el.stopHint.hidden = el.stop.hidden || !(wrongAccount || !state.account);
  el.stopHint.textContent = wrongAccount
    ? `Only the account that signed this agreement (${a.customer}) can stop it.`
    : !state.account
      ? 'Stopping needs your wallet: you will be asked to connect it.'
      : '';
  el.newAgreement.hidden = !(a && TERMINAL.has(a.status));
}

function tick() {
  const a = state.agreement;
  if (!a || a.status !== 'active' || !a.startedAt) return;
  const now = Math.floor(Date.now() / 1000 + (state.clockOffset || 0));
  const elapsed = Math.min(Math.max(0, now - a.startedAt), (a.endsAt ?? now) - a.startedAt);
  el.runningFor.textContent = formatClock(elapsed);
  const cost = a.model === 'dynamicPrice' ? BigInt(a.price) * BigInt(elapsed) : BigInt(a.price);
  el.costSoFar.textContent = `${formatEth(cost)} (estimated; the chain's clock decides)`;
  el.costSoFar.dataset.wei = cost.toString();
}

function renderSettlement(a) {
  const settled = a && (a.status === 'settled' || a.status === 'refunded') && a.refund !== null && a.refund !== undefined;
  el.settlement.hidden = !settled;
  if (!settled) return;
  const used = a.startedAt && a.endedAt ? a.endedAt - a.startedAt : 0;
  el.usedSeconds.textContent = `${formatDuration(used)} (${used} s)`;
  el.usedSeconds.dataset.seconds = String(used);
  if (a.availabilityBps === null || a.availabilityBps === undefined) {
    el.availability.textContent = a.status === 'refunded' ? 'not applicable (never started)' : '—';
    el.availability.dataset.bps = '';
  } else {
    el.availability.textContent = formatBps(a.availabilityBps);
    el.availability.dataset.bps = String(a.availabilityBps);
  }
  const charge = BigInt(a.charged ?? 0);
  const refund = BigInt(a.refund ?? 0);
  el.charge.textContent = formatEth(charge);
  el.charge.dataset.wei = charge.toString();
  el.refund.textContent = formatEth(refund);
  el.refund.dataset.wei = refund.toString();
  const low = typeof a.availabilityBps === 'number' && a.availabilityBps < MIN_AVAILABILITY_BPS;
  el.availabilityNote.hidden = !low && !a.refundDeferred;
  el.availabilityNote.textContent = [
    low
      ? `The room was available only ${formatBps(a.availabilityBps)} of the time, below the 75% the service promises, so you were not charged: your whole deposit was refunded.`
      : '',
    a.refundDeferred
      ? 'The escrow could not send the refund to your account directly; it is kept for you in the contract to withdraw.'
      : '',
  ]
    .filter(Boolean)
    .join(' ');
}

// ---------------------------------------------------------------------------------------------
// Start-up.
// ---------------------------------------------------------------------------------------------

function agreementFromUrl() {
  const raw = new URL(window.location.href).searchParams.get('agreement');
  if (raw === null) return null;
  if (!/^\d{1,78}$/.test(raw.trim())) {
    showError(`“${raw}” in the link is not an agreement number.`);
    return null;
  }
  return BigInt(raw.trim());
}

async function start() {
  el.connect.addEventListener('click', () => connect());
  el.stop.addEventListener('click', () => stopAgreement());
  el.stopSigned.addEventListener('click', () => stopBySignature());
  window.addEventListener('popstate', () => {
    const id = agreementFromUrl();
    if (id === null) {
      state.following = null;
      state.pollGeneration += 1;
      clearTimeout(state.pollTimer);
      clearInterval(state.tickTimer);
      renderAgreement();
    } else follow(id);
  });

  const id = agreementFromUrl();
  if (id !== null) follow(id);

  try {
    const [config, offers] = await Promise.all([api('/api/config'), api('/api/offers')]);
    state.config = config;
    state.offers = Array.isArray(offers) ? offers : [];
    renderWallet();
    renderOffers();
  } catch (err) {
    console.error(err); // the sentence below is for the customer; the details are for whoever debugs
    el.offersLoading.hidden = true;
    showError(
      err instanceof ApiError
        ? `The offers could not be loaded. ${err.message} Reload the page to try again.`
        : 'The offers could not be loaded. Reload the page to try again.',
    );
  }
}

start();
