// The chain as the page reads it: a viem public client straight to the service's RPC (no wallet
// needed, so auditors can read everything), and the contracts' ABIs as the backend binds them.
import { createPublicClient, defineChain, http, type Abi, type Chain, type PublicClient } from 'viem';
import { abi as escrowAbiJson } from '../../backend/abi/ConferenceEscrow.json';
import { abi as bookAbiJson } from '../../backend/abi/OfferBook.json';
import { abi as registryAbiJson } from '../../backend/abi/ProviderRegistry.json';
import type { Config } from './config';

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
    rpcUrls: { default: { http: [cfg.rpcUrl] } },
    blockExplorers: cfg.explorer ? { default: { name: 'Explorer', url: cfg.explorer } } : undefined,
  });
}

let client: PublicClient | undefined;

/** One public client per page load, reading from the service's RPC. */
export function publicClient(cfg: Config): PublicClient {
  client ??= createPublicClient({ chain: serviceChain(cfg), transport: http(cfg.rpcUrl), pollingInterval: 500 });
  return client;
}

/** A link to a transaction or address on the explorer, or null on a chain without one. */
export function explorerLink(cfg: Config, kind: 'tx' | 'address', value: string): string | null {
  return cfg.explorer ? `${cfg.explorer.replace(/\/$/, '')}/${kind}/${value}` : null;
}
