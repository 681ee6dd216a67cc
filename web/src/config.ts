// What the backend tells the page about the chain and itself (`GET /api/config`), loaded once.

export interface TokenInfo {
  /** 0 for ETH, else the escrow's ERC-20 token id. */
  id: number;
  symbol: string;
  decimals: number;
  address: `0x${string}` | null;
}

export interface ContractInfo {
  name: string;
  address: `0x${string}`;
  compiler: string;
  optimizer: { enabled: boolean; runs: number };
  evmVersion: string;
  sourceUrl: string | null;
}

export interface Config {
  chainId: number;
  rpcUrl: string;
  escrow: `0x${string}`;
  book: `0x${string}`;
  registry: `0x${string}`;
  /** The first block worth reading events from (the escrow's deployment). */
  deployBlock: number;
  orchestrator: 'local' | 'kubernetes' | 'noop';
  publicUrl: string;
  tokens: TokenInfo[];
  /** Names of the region bits 0, 1, 2, … of the contracts' region masks. */
  regions: string[];
  contracts: ContractInfo[];
  /** A block explorer's base URL for links to transactions and addresses, or null on a local chain. */
  explorer: string | null;
  /** Custom error selectors (0x + 8 hex digits) to their names, for explaining reverts. */
  errors: Record<string, string>;
}

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
