// The customer's wallet: EIP-6963 discovery (several wallets: the user chooses; none announced:
// `window.ethereum`), connecting, the service's chain, the header's account and balances, and sending
// transactions through a viem wallet client while reading receipts from the service's RPC.
//
// Only the pages that sign load this module (and the header's "Connect wallet", when pressed: see
// header.ts): it brings viem's wallet client and the reads that come with sending.
import {
  createWalletClient,
  custom,
  getAddress,
  parseEventLogs,
  type Abi,
  type Address,
  type Hash,
  type TransactionReceipt,
  type WalletClient,
} from 'viem';
import { estimateContractGas, getBalance, getGasPrice, simulateContract, waitForTransactionReceipt } from 'viem/actions';
import { erc20Abi, explorerLink, publicClient, serviceChain } from './chain';
import { config, type Config } from './config';
import { h, replace, showError, showNotice } from './dom';
import { errorCode, UserError, userMessage } from './errors';
import { formatAmount, formatAmountShort, shortAddress } from './format';
import { connectButton } from './header';

/** What an EIP-1193 provider offers the page. */
export interface Eip1193 {
  request(args: { method: string; params?: unknown }): Promise<unknown>;
  on?(event: string, handler: (...args: any[]) => void): unknown;
  removeListener?(event: string, handler: (...args: any[]) => void): unknown;
}

/** One wallet as EIP-6963 announces it. */
interface Announced {
  info: { uuid: string; name: string; icon: string; rdns: string };
  provider: Eip1193;
}

declare global {
  interface Window {
    ethereum?: Eip1193;
  }
  interface WindowEventMap {
    'eip6963:announceProvider': CustomEvent<Announced>;
  }
}

const announced: Announced[] = [];
window.addEventListener('eip6963:announceProvider', (event) => {
  const detail = event.detail;
  if (!detail?.provider || typeof detail.provider.request !== 'function') return;
  if (!announced.some((a) => a.provider === detail.provider || a.info?.uuid === detail.info?.uuid)) announced.push(detail);
});
window.dispatchEvent(new Event('eip6963:requestProvider'));

/** The wallet as the page knows it. `chainId` is the wallet's current chain. */
interface WalletState {
  provider: Eip1193 | null;
  name: string;
  account: Address | null;
  chainId: number | null;
}

const state: WalletState = { provider: null, name: 'your wallet', account: null, chainId: null };
const watchers = new Set<() => void>();

/** Calls `fn` whenever the account or the chain changes; returns the function that stops it. */
export function onWalletChange(fn: () => void): () => void {
  watchers.add(fn);
  return () => watchers.delete(fn);
}

function changed(): void {
  // The account page is a connected customer's: its link shows once a wallet shares an account.
  const link = document.getElementById('nav-account');
  if (link) link.hidden = !state.account;
  void renderHeader();
  for (const fn of watchers) fn();
}

/** The connected account, or null. */
export function account(): Address | null {
  return state.account;
}

/** Whether the wallet is on the service's chain. */
export function onServiceChain(cfg: Config): boolean {
  return state.chainId === cfg.chainId;
}

async function choose(): Promise<Announced | Eip1193 | null> {
  if (announced.length === 0) {
    window.dispatchEvent(new Event('eip6963:requestProvider'));
    // Wallets answer at once or on the next task; give slow ones a moment.
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  if (announced.length === 1) return announced[0];
  if (announced.length > 1) {
    // Several wallets: the user picks one in the header.
    const slot = document.getElementById('wallet');
    if (!slot) return announced[0];
    return new Promise((resolve) => {
      replace(
        slot,
        h(
          'fieldset',
          { class: 'wallet-choice', 'data-testid': 'wallet-choice' },
          h('legend', {}, 'Choose a wallet'),
          ...announced.map((a) =>
            h('button', { type: 'button', 'data-rdns': a.info.rdns, onclick: () => resolve(a) }, a.info.name || a.info.rdns),
          ),
        ),
      );
      slot.querySelector('button')?.focus();
    });
  }
  return window.ethereum && typeof window.ethereum.request === 'function' ? window.ethereum : null;
}

function subscribe(provider: Eip1193): void {
  provider.on?.('accountsChanged', (accounts: string[]) => {
    state.account = Array.isArray(accounts) && accounts[0] ? getAddress(accounts[0]) : null;
    showNotice(state.account ? null : 'Your wallet disconnected this page: connect it again to sign or pay.');
    changed();
  });
  provider.on?.('chainChanged', (chainId: string) => {
    state.chainId = Number.parseInt(chainId, 16);
    changed();
  });
}

/** Connects the wallet (asking the user to choose when several are installed) and asks it to switch
 *  to the service's chain. Returns the account. Throws a UserError with the sentence to show. */
export async function connect(): Promise<Address> {
  const cfg = await config();
  if (!state.provider) {
    const picked = await choose();
    if (!picked) {
      void renderHeader();
      throw new UserError('No Ethereum wallet was found in this browser: install one (such as MetaMask), then reload this page.');
    }
    const provider = 'provider' in picked ? picked.provider : picked;
    state.provider = provider;
    state.name = 'info' in picked ? picked.info.name || 'your wallet' : 'your wallet';
    subscribe(provider);
  }
  showNotice(`Waiting for ${state.name} to share an account…`);
  try {
    const accounts = (await state.provider.request({ method: 'eth_requestAccounts' })) as string[];
    if (!accounts?.[0]) throw new UserError('Your wallet shared no account: unlock it and connect again.');
    state.account = getAddress(accounts[0]);
    state.chainId = Number.parseInt((await state.provider.request({ method: 'eth_chainId' })) as string, 16);
    if (state.chainId !== cfg.chainId) await switchChain().catch((err) => showError(userMessage(err)));
  } catch (err) {
    if (errorCode(err) === 4001) throw new UserError('You declined to connect your wallet: nothing was shared.');
    throw err;
  } finally {
    showNotice(null);
    changed();
  }
  return state.account;
}

/** Asks the wallet to switch to the service's chain, adding it when the wallet does not know it. */
export async function switchChain(): Promise<void> {
  const cfg = await config();
  const provider = state.provider;
  if (!provider) throw new UserError('Connect your wallet first.');
  const chainId = `0x${cfg.chainId.toString(16)}`;
  try {
    await provider.request({ method: 'wallet_switchEthereumChain', params: [{ chainId }] });
  } catch (err) {
    if (errorCode(err) !== 4902) {
      throw new UserError(
        errorCode(err) === 4001
          ? `You declined to switch networks: this service runs on chain ${cfg.chainId} only.`
          : `Your wallet could not switch to the service’s network (chain ${cfg.chainId}): switch it by hand.`,
      );
    }
    if (!cfg.rpcUrl) {
      throw new UserError(`Your wallet does not know chain ${cfg.chainId}, and this service names no public endpoint for it: add the chain to your wallet yourself.`);
    }
    const chain = serviceChain(cfg);
    await provider.request({
      method: 'wallet_addEthereumChain',
      params: [
        {
          chainId,
          chainName: chain.name,
          nativeCurrency: chain.nativeCurrency,
          rpcUrls: [cfg.rpcUrl],
          blockExplorerUrls: cfg.explorer ? [cfg.explorer] : undefined,
        },
      ],
    });
  }
  state.chainId = Number.parseInt((await provider.request({ method: 'eth_chainId' })) as string, 16);
  changed();
  if (state.chainId !== cfg.chainId) throw new UserError(`Your wallet is still on chain ${state.chainId}: switch it to chain ${cfg.chainId}.`);
}

/** A viem wallet client over the wallet, on the service's chain. */
function walletClient(cfg: Config): WalletClient {
  if (!state.provider) throw new UserError('Connect your wallet first.');
  return createWalletClient({ chain: serviceChain(cfg), transport: custom(state.provider) });
}

/** The connected account on the service's chain, connecting first if needed; refuses (with the
 *  sentence) while the wallet is on another chain. */
export async function ready(): Promise<{ cfg: Config; account: Address; client: WalletClient }> {
  const cfg = await config();
  if (!state.account || !state.provider) await connect();
  state.chainId = Number.parseInt((await state.provider!.request({ method: 'eth_chainId' })) as string, 16);
  if (state.chainId !== cfg.chainId) {
    changed();
    throw new UserError(
      `Your wallet is on another network (chain ${state.chainId}); this service runs on chain ${cfg.chainId}. Press “Switch network” and try again: nothing was sent.`,
    );
  }
  return { cfg, account: state.account!, client: walletClient(cfg) };
}

/** Signs `message` with personal_sign (EIP-191) through the wallet; needs no particular chain. */
export async function signMessage(message: string): Promise<`0x${string}`> {
  const cfg = await config();
  if (!state.account || !state.provider) await connect();
  showNotice(`Confirm in ${state.name}: sign the message (it costs nothing).`);
  try {
    return await walletClient(cfg).signMessage({ account: state.account!, message });
  } finally {
    showNotice(null);
  }
}

/** Signs EIP-712 typed data (eth_signTypedData_v4) through the wallet, on the service's chain. */
export async function signTypedData(typed: Parameters<WalletClient['signTypedData']>[0]): Promise<`0x${string}`> {
  const { client, account } = await ready();
  showNotice(`Confirm in ${state.name}: sign the message (it costs no gas).`);
  try {
    return await client.signTypedData({ ...typed, account } as Parameters<WalletClient['signTypedData']>[0]);
  } finally {
    showNotice(null);
  }
}

/** A contract call to send. */
export interface Call {
  address: Address;
  abi: Abi;
  functionName: string;
  args: readonly unknown[];
  value?: bigint;
}

/** Sends `call` after simulating it (so a revert is explained before anything is signed), then waits
 *  for its receipt on the service's RPC, following a replacement. `what` names it in sentences. */
export async function send(what: string, call: Call): Promise<TransactionReceipt> {
  const { cfg, account: from, client } = await ready();
  await simulateContract(publicClient(cfg), { ...call, account: from } as Parameters<typeof simulateContract>[1]);
  showNotice(`Confirm in ${state.name}: ${what}.`);
  let hash: Hash;
  try {
    hash = await client.writeContract({ ...call, account: from, chain: serviceChain(cfg) } as Parameters<WalletClient['writeContract']>[0]);
  } finally {
    showNotice(null);
  }
  return waitFor(cfg, what, hash);
}

/** What sending `call` from `from` would cost: its gas and the gas price, read from the service's RPC. */
export async function gasCost(cfg: Config, call: Call, from: Address): Promise<{ gas: bigint; gasPrice: bigint }> {
  const reader = publicClient(cfg);
  const [gas, gasPrice] = await Promise.all([
    estimateContractGas(reader, { ...call, account: from } as Parameters<typeof estimateContractGas>[1]),
    getGasPrice(reader),
  ]);
  return { gas, gasPrice };
}

/** Waits for a transaction's receipt; a replaced transaction is followed and reported, a reverted or
 *  dropped one becomes a sentence. */
export async function waitFor(cfg: Config, what: string, hash: Hash): Promise<TransactionReceipt> {
  const link = explorerLink(cfg, 'tx', hash) ?? hash;
  showNotice(`Sent (${link}): waiting for it to be included in a block…`);
  let replacedBy: string | null = null;
  try {
    const receipt = await waitForTransactionReceipt(publicClient(cfg), {
      hash,
      timeout: 300_000,
      onReplaced: (replacement) => {
        replacedBy = replacement.transaction.hash;
        showNotice(
          replacement.reason === 'repriced'
            ? `Your wallet sped the transaction up (${replacedBy}): following the new one.`
            : `The transaction was ${replacement.reason} in your wallet by ${replacedBy}: following that one.`,
        );
      },
    });
    if (receipt.status === 'reverted') {
      throw new UserError(`The ${what} transaction was reverted by the contract (${receipt.transactionHash}): nothing changed but the gas it used.`);
    }
    showNotice(replacedBy ? `The ${what} transaction was replaced by ${replacedBy}, which was included.` : null);
    void refreshBalances();
    return receipt;
  } catch (err) {
    showNotice(null);
    throw err;
  }
}

/** The events of `eventName` that `address` emitted in `receipt`, decoded. */
export function eventsOf(receipt: TransactionReceipt, abi: Abi, eventName: string, address: Address): { args: Record<string, unknown> }[] {
  const logs = receipt.logs.filter((log) => log.address.toLowerCase() === address.toLowerCase());
  return parseEventLogs({ abi, eventName, logs }) as unknown as { args: Record<string, unknown> }[];
}

// ---------------------------------------------------------------------------------------------
// The header: connect button, account, network, balances.
// ---------------------------------------------------------------------------------------------

let balanceSeq = 0;

async function refreshBalances(): Promise<void> {
  const cfg = await config();
  const slot = document.getElementById('balances');
  if (!slot || !state.account) return;
  const seq = ++balanceSeq;
  const reader = publicClient(cfg);
  try {
    const items = await Promise.all(
      cfg.tokens.map(async (token) => {
        const units =
          token.address === null
            ? await getBalance(reader, { address: state.account! })
            : ((await reader.readContract({ address: token.address, abi: erc20Abi, functionName: 'balanceOf', args: [state.account!] })) as bigint);
        return h(
          'li',
          {
            id: token.address === null ? 'balance' : `balance-${token.id}`,
            'data-testid': `balance-${token.symbol}`,
            'data-units': units.toString(),
            'data-wei': token.address === null ? units.toString() : null,
            // The exact balance on hover; the header itself shows four decimals.
            title: formatAmount(units, token),
          },
          formatAmountShort(units, token),
        );
      }),
    );
    if (seq === balanceSeq) replace(slot, ...items);
  } catch {
    if (seq === balanceSeq) replace(slot, h('li', {}, 'Balance unavailable: the chain’s RPC did not answer.'));
  }
}

/** Draws `#wallet` in the header from the current state. */
export async function renderHeader(): Promise<void> {
  const slot = document.getElementById('wallet');
  if (!slot) return;
  const cfg = await config().catch(() => null);
  if (!state.account) {
    replace(slot, connectButton());
    return;
  }
  const wrong = cfg !== null && state.chainId !== cfg.chainId;
  replace(
    slot,
    h(
      'div',
      { class: 'wallet-info' },
      h('span', { id: 'account', class: 'mono', 'data-testid': 'account', title: state.account, 'data-address': state.account }, shortAddress(state.account)),
      wrong
        ? h(
            'span',
            { id: 'network', class: 'wrong-network', 'data-testid': 'wrong-network' },
            `Wrong network: your wallet is on chain ${state.chainId}, the service on chain ${cfg!.chainId}. `,
            h('button', { type: 'button', id: 'switch-network', 'data-testid': 'switch-network', onclick: () => void switchChain().catch((err) => showError(userMessage(err))) }, 'Switch network'),
          )
        : h('span', { id: 'network', class: 'hint' }, cfg ? `chain ${cfg.chainId}` : ''),
      h('ul', { id: 'balances', class: 'balances', 'aria-label': 'Balances' }),
    ),
  );
  if (!wrong) await refreshBalances();
}

/** The header's "Connect wallet": connects, or shows why not. */
export async function connectFromHeader(): Promise<void> {
  showError(null);
  try {
    await connect();
  } catch (err) {
    showError(userMessage(err));
  }
}

void renderHeader();
