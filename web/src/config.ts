// What the backend tells the page about the chain and itself (`GET /api/config`), loaded once.

import type { Address } from 'viem';
import type { ContractInfo as ContractSchema, PublicConfig, Refine, TokenInfo as TokenSchema } from './api';

// The answer's types come from the OpenAPI document (api.ts); here only addresses are narrowed to viem's
// `0x…` type, which the contract calls take.

/** A currency agreements can be paid in: id 0 for ETH, else the escrow's ERC-20 token id. */
export type TokenInfo = Refine<TokenSchema, { address: Address | null }>;

/** A contract of the service and how it was compiled. */
export type ContractInfo = Refine<ContractSchema, { address: Address }>;

/** The chain, its contracts (`deployBlock`: the first block worth reading events from), the tokens, the
 *  region names (bit i of the contracts' masks), the explorer (null on a local chain) and the custom
 *  error selectors, for explaining reverts. */
export type Config = Refine<PublicConfig, { escrow: Address; book: Address; registry: Address; tokens: TokenInfo[]; contracts: ContractInfo[] }>;

let loaded: Promise<Config> | undefined;

/** The service's config, fetched once per page load. */
export function config(): Promise<Config> {
  loaded ??= fetch('/api/config').then(async (response) => {
    if (!response.ok) throw new Error(`The service did not answer (${response.status}): reload the page.`);
    return (await response.json()) as Config;
  });
  return loaded;
}

/** The token with id `tokenId`, or a placeholder that makes an unknown token visible rather than wrong. */
export function token(cfg: Config, tokenId: number): TokenInfo {
  return cfg.tokens.find((t) => t.id === tokenId) ?? { id: tokenId, symbol: `token ${tokenId}`, decimals: 0, address: null };
}

/** The names of the regions whose bits are set in `mask`. */
export function regionNames(cfg: Config, mask: number): string[] {
  return cfg.regions.filter((_, bit) => (mask >> bit) & 1);
}
