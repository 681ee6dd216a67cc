// The errors of the escrow's annex. The customer accounts' functions (and payouts, terms publishing,
// admin) run in EscrowAnnex's code at the escrow's address (one contract to callers: contracts/README.md),
// so they revert with errors the escrow's own ABI does not list: the calls the account page sends, and
// the batch failures the audit decodes, take `accountAbi`, which adds them. Its own module, because the
// annex's ABI weighs: only the pages that send or decode these load it.
import { decodeErrorResult, type Abi, type Hex } from 'viem';
import { abi as annexAbiJson } from '../../backend/abi/EscrowAnnex.json';
import { escrowAbi, tokenErrorsAbi } from './chain';

const escrowErrors = new Set(escrowAbi.flatMap((item) => (item.type === 'error' ? [item.name] : [])));

/** The escrow's ABI with every error a call at its address can revert with: its own, its annex's and the
 *  stablecoin's. */
export const accountAbi: Abi = [
  ...escrowAbi,
  ...(annexAbiJson as Abi).filter((item) => item.type === 'error' && !escrowErrors.has(item.name)),
  ...tokenErrorsAbi,
];

/** A revert's data decoded by the errors a call at the escrow can revert with (its own, its annex's, the
 *  stablecoin's, and Solidity's `Error(string)` and `Panic(uint256)`): the error's name, its arguments
 *  and their names; null when none matches. */
export function decodeRevert(data: Hex): { name: string; args: readonly unknown[]; names: string[] } | null {
  if (!data || data === '0x') return null;
  try {
    const decoded = decodeErrorResult({ abi: accountAbi, data });
    return { name: decoded.errorName, args: decoded.args ?? [], names: 'inputs' in decoded.abiItem ? decoded.abiItem.inputs.map((input) => input.name ?? '') : [] };
  } catch {
    return null;
  }
}
