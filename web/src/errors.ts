// Every failure the user can meet, as one sentence: from the wallet (EIP-1193 codes), the chain
// (viem's errors, the contracts' custom errors) and the service (its JSON `{"error": ...}`). Never a
// stack trace.
import { BaseError, ContractFunctionRevertedError, InsufficientFundsError, UserRejectedRequestError } from 'viem';

/** An error whose message is already a sentence for the user. */
export class UserError extends Error {}

/** The contracts' custom errors in words; an unlisted one is named as the contract names it. */
const CONTRACT_ERRORS: Record<string, string> = {
  Escrow_TermsNotOpen: 'This offer is no longer open (its terms were retired or changed by a vote): reload the page.',
  Escrow_NoRegionAllowed: 'This offer does not serve any of the regions you allowed.',
  Escrow_GdprUnavailable: 'Not every provider of this offer is GDPR-compliant.',
  Escrow_WrongDeposit: 'The deposit does not match the offer any more: reload the page and try again.',
  Escrow_UnknownAgreement: 'The escrow contract does not know this agreement.',
  Escrow_WrongStatus: 'The agreement has already moved on (it may already be stopped): the page shows where it stands.',
  Escrow_NotCustomer: 'Only the account that signed this agreement can do that.',
  Escrow_Paused: 'The escrow contract is paused for maintenance: no new agreement can be signed right now.',
  Escrow_InvalidWindow: 'The window is not valid: it must end in the future, after it starts, and be no longer than the offer allows.',
  Escrow_InvalidQuantity: 'That number of minutes cannot be bought: at least one, and no more than the offer allows.',
  Escrow_OutsideWindow: 'The conference can only start inside its reserved window.',
  Escrow_NoMinutesLeft: 'No minutes are left on this account: buy more under a new agreement.',
  Escrow_WrongModel: 'This action does not apply to this offer’s pricing model.',
  Escrow_UnsupportedToken: 'The token delivered less than it was asked to (a fee on transfer): the escrow does not accept it.',
  // Submitting a signed stop on-chain (`stopBySignature`).
  Escrow_SignatureExpired: 'Your signed stop’s deadline has passed: sign a new stop, or stop with a transaction.',
  Escrow_InvalidSignature: 'The escrow does not take this signed stop as yours for the running conference: sign a new stop, or stop with a transaction.',
  // Withdrawing earnings (`withdrawEarnings`).
  Escrow_NotProvider: 'Only the provider’s own account or its payout address can withdraw its earnings: switch to one of them in your wallet.',
  Escrow_NoEarnings: 'There is nothing to withdraw in this token.',
  Escrow_TransferFailed: 'The payout address refused the payment: update the payout address, then withdraw again.',
  // Customer accounts and orders (run in the escrow's annex; see accounts.ts).
  Escrow_InvalidAmount: 'Enter an amount above zero (and no more than an account can hold).',
  Escrow_InvalidToken: 'The escrow does not accept this token.',
  Escrow_InsufficientBalance: 'Your account’s free balance does not cover what this conference locks: deposit more on your account page.',
  Escrow_OrderOverLimit: 'The conference would lock more than your order allows: reload the page and sign again.',
  Escrow_OrderExpired: 'Your signed order’s deadline passed before it was opened: sign a new one.',
  Escrow_OrderNonceUsed: 'This order was already used or cancelled: sign a new one.',
  Escrow_InvalidOrderSignature: 'The escrow does not take this signature as your order: sign it again from the account that holds the balance.',
  Escrow_NoWithdrawalRequested: 'There is no withdrawal request to complete: request a withdrawal first.',
  Escrow_WithdrawalNotDue: 'The withdrawal is not due yet: it waits out the activation window after its request.',
  Escrow_NothingToWithdraw: 'There is nothing free to withdraw in this token.',
  ERC20InsufficientAllowance: 'The escrow may not take that much of your tokens yet: approve the amount first.',
  ERC20InsufficientBalance: 'Your account does not hold enough of the token to pay this.',
};

/** A contract's custom error in words, by its name (`Escrow_OrderExpired`): the sentence the page shows
 *  when a call reverts with it, or the name itself when it has none. */
export function contractErrorText(name: string): string {
  return CONTRACT_ERRORS[name] ?? `The contract refused: ${name}.`;
}

/** The EIP-1193 / EIP-1474 error code of a wallet error, wherever the wallet put it. */
export function errorCode(err: unknown): number | undefined {
  const e = err as { code?: number; cause?: { code?: number }; data?: { originalError?: { code?: number } } };
  return e?.code ?? e?.cause?.code ?? e?.data?.originalError?.code;
}

export function userMessage(err: unknown): string {
  if (err instanceof UserError) return err.message;
  if (err instanceof BaseError) {
    if (err.walk((e) => e instanceof UserRejectedRequestError) || errorCode(err) === 4001) {
      return 'You rejected the request in your wallet: nothing was signed or sent.';
    }
    if (err.walk((e) => e instanceof InsufficientFundsError)) {
      return 'Your account does not hold enough to pay this and its gas.';
    }
    const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
    if (reverted instanceof ContractFunctionRevertedError) {
      const name = reverted.data?.errorName;
      if (name) return contractErrorText(name);
      return `The contract refused: ${reverted.reason ?? 'it reverted without a reason'}.`;
    }
    if (err.name === 'TransactionReplacedError') return 'The transaction was replaced in your wallet; the page follows the one that replaced it.';
    if (err.name === 'WaitForTransactionReceiptTimeoutError') return 'The transaction was not mined in time: it may have been dropped. Check your wallet and try again.';
    if (err.name === 'ChainMismatchError') return 'Your wallet is on another network: switch it to the service’s network and try again.';
    return err.shortMessage;
  }
  switch (errorCode(err)) {
    case 4001:
      return 'You rejected the request in your wallet: nothing was signed or sent.';
    case 4100:
      return 'Your wallet has not authorised this site: connect it first.';
    case 4902:
      return 'Your wallet does not know the service’s network and could not add it.';
    case -32002:
      return 'Your wallet already has a request waiting: open it and answer it.';
  }
  if (err instanceof TypeError && /fetch/i.test(err.message)) return 'The service could not be reached: check your connection and reload.';
  return err instanceof Error ? err.message : String(err);
}
