// The chain as the page reads it: a viem client straight to the public RPC endpoint the service names
// (no wallet needed, so auditors can read everything), or through the visitor's wallet when it names
// none; and the contracts' ABIs as the backend binds them. The formulas are in pricing.ts.
//
// The client carries only the reads the pages make (viem's public client would bring every action,
// signature checks and all, into every page); the reads that send (simulate, estimate, receipts) live
// in wallet.ts, loaded by the pages that sign. Contract reads made together go out as one multicall
// (viem's deployless Multicall3: no contract needs to be deployed on the chain, the dev chain included),
// and requests made together as one JSON-RPC batch, so a page asks the node in a few round trips.
import { createClient, custom, defineChain, http, type Abi, type Chain, type Client, type EIP1193Provider, type PublicActions, type Transport } from 'viem';
import { getBlock, getBlockNumber, getContractEvents, getTransaction, multicall, readContract } from 'viem/actions';
import { abi as escrowAbiJson } from '../../backend/abi/ConferenceEscrow.json';
import { abi as bookAbiJson } from '../../backend/abi/OfferBook.json';
import { abi as registryAbiJson } from '../../backend/abi/ProviderRegistry.json';
import type { Config } from './config';
import { UserError } from './errors';

export const escrowAbi = escrowAbiJson as Abi;
export const bookAbi = bookAbiJson as Abi;
export const registryAbi = registryAbiJson as Abi;

/** The minimal ERC-20 surface the page uses (the stablecoin's balance, allowance and approval). */
export const erc20Abi = [
  { type: 'function', name: 'balanceOf', stateMutability: 'view', inputs: [{ name: 'a', type: 'address' }], outputs: [{ type: 'uint256' }] },
  { type: 'function', name: 'allowance', stateMutability: 'view', inputs: [{ name: 'o', type: 'address' }, { name: 's', type: 'address' }], outputs: [{ type: 'uint256' }] },
  { type: 'function', name: 'approve', stateMutability: 'nonpayable', inputs: [{ name: 's', type: 'address' }, { name: 'v', type: 'uint256' }], outputs: [{ type: 'bool' }] },
] as const satisfies Abi;

/** The service's chain as viem (and a wallet's `wallet_addEthereumChain`) needs it. */
export function serviceChain(cfg: Config): Chain {
  return defineChain({
    id: cfg.chainId,
    name: cfg.chainId === 31337 ? 'Local chain (anvil)' : `Chain ${cfg.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: cfg.rpcUrl ? [cfg.rpcUrl] : [] } },
    blockExplorers: cfg.explorer ? { default: { name: 'Explorer', url: cfg.explorer } } : undefined,
  });
}

/** The reads the pages make, as viem's public client names them. */
type ReadActions = Pick<PublicActions<Transport, Chain>, 'readContract' | 'multicall' | 'getBlock' | 'getBlockNumber' | 'getContractEvents' | 'getTransaction'>;

/** A client of the service's chain with the pages' reads. */
export type Reader = Client<Transport, Chain> & ReadActions;

let client: Reader | undefined;

/** Where reads go: the public endpoint the service names, else the wallet the page finds (EIP-1193). */
function readTransport(cfg: Config): Transport {
  // At most 50 requests a batch: public endpoints cap their batches, anvil does not.
  if (cfg.rpcUrl) return http(cfg.rpcUrl, { batch: { batchSize: 50 } });
  const wallet = (globalThis as { ethereum?: EIP1193Provider }).ethereum;
  if (wallet) return custom(wallet);
  throw new UserError('This service names no public endpoint of its chain: install a wallet (MetaMask) to read it.');
}

/** One client per page load, reading from the service's public RPC (or the wallet). */
export function publicClient(cfg: Config): Reader {
  // No cached block number: a page that redraws right after its own transaction must read up to the
  // block that holds it (viem otherwise reuses the head it saw up to `cacheTime` ago).
  client ??= createClient({
    chain: serviceChain(cfg),
    transport: readTransport(cfg),
    pollingInterval: 500,
    cacheTime: 0,
    batch: { multicall: { deployless: true } },
  }).extend(
    (c): ReadActions => ({
      readContract: (args) => readContract(c, args as Parameters<typeof readContract>[1]),
      multicall: (args) => multicall(c, args as Parameters<typeof multicall>[1]),
      getBlock: (args) => getBlock(c, args as Parameters<typeof getBlock>[1]),
      getBlockNumber: (args) => getBlockNumber(c, args),
      getContractEvents: (args) => getContractEvents(c, args as Parameters<typeof getContractEvents>[1]),
      getTransaction: (args) => getTransaction(c, args as Parameters<typeof getTransaction>[1]),
    }) as ReadActions,
  );
  return client;
}

/** A link to a transaction or address on the explorer, or null on a chain without one. */
export function explorerLink(cfg: Config, kind: 'tx' | 'address', value: string): string | null {
  return cfg.explorer ? `${cfg.explorer.replace(/\/$/, '')}/${kind}/${value}` : null;
}

/** The errors of OpenZeppelin's ERC-20 (the stablecoin), so a token's refusal inside an escrow call
 *  is decoded and explained rather than shown as an unknown revert. */
export const tokenErrorsAbi = [
  { type: 'error', name: 'ERC20InsufficientAllowance', inputs: [{ name: 'spender', type: 'address' }, { name: 'allowance', type: 'uint256' }, { name: 'needed', type: 'uint256' }] },
  { type: 'error', name: 'ERC20InsufficientBalance', inputs: [{ name: 'sender', type: 'address' }, { name: 'balance', type: 'uint256' }, { name: 'needed', type: 'uint256' }] },
] as const satisfies Abi;

/** The contracts' models in their enum order (`IOfferBook.Model`). */
export const MODELS = ['fixedPrice', 'dynamicPrice', 'timeLimited', 'flexiblePeriod'] as const;

/** A terms version as the escrow stores it (`termsOf`). */
export interface ChainTerms {
  price: bigint;
  maxDuration: number;
  offerId: number;
  regions: number;
  gdprSurchargeBps: number;
  regionSurchargeBps: number;
  model: number;
  tokenId: number;
  gdpr: boolean;
  open: boolean;
  owner: `0x${string}`;
  margin: bigint;
  minimumCharge: bigint;
  /** The terms' independent monitor (a provider with the Monitoring role), whose signed report alone
   *  settles their conferences; the zero address when the operator reports the figure. */
  monitor: `0x${string}`;
  shares: readonly { providerId: number; component: bigint }[];
}

/** An agreement as the escrow stores it (`agreementOf`). */
export interface ChainAgreement {
  customer: `0x${string}`;
  termsId: number;
  allowedRegions: number;
  model: number;
  tokenId: number;
  gdpr: boolean;
  status: number;
  region: number;
  /** The terms' price per unit, before the surcharge. */
  price: bigint;
  /** The constraint surcharge in basis points, applied to each amount as a whole (pricing.ts). */
  surchargeBps: number;
  duration: number;
  startedAt: number;
  endedAt: number;
}

/** The escrow's agreement statuses in their enum order (`IConferenceEscrow.Status`). */
export const CHAIN_STATUS = ['none', 'idle', 'requested', 'active', 'ended', 'settled', 'refunded'] as const;
