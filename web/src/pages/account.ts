// The customer's account in the escrow (`/account`): per token, the free and the locked balance (rounded,
// the exact figure on hover and on focus), a deposit (ETH, or the stablecoin after an approval), the
// withdrawal request with when it is due, completing or cancelling it; then the conferences opened from
// the account (the escrow's `OrderFilled` events of this customer), each with its status on-chain and a
// link to its page. Conferences are opened from the offers page by a signed order (no transaction).
//
// The withdrawal rule (contracts/README.md): a request waits out the activation window, so that an order
// the operator accepted can still be opened; then it pays min(requested, free). Locked money returns to
// the free balance at each settlement, less its charge.
import { parseUnits, type Address } from 'viem';
import { forgetOrderWord, orderWord, readAccount, type Account } from '../accounts';
import { accountAbi } from '../annex';
import { CHAIN_STATUS, erc20Abi, escrowAbi, MODELS, publicClient, type ChainAgreement } from '../chain';
import { config, token as tokenOf, type Config, type TokenInfo } from '../config';
import { h, replace, scrollBox, showError, showNotice } from '../dom';
import { UserError, userMessage } from '../errors';
import { exactAmount } from '../exact';
import { formatAmount, formatDuration, formatTime } from '../format';
import type { Page } from '../router';
import { account, connect, onWalletChange, send } from '../wallet';

/** How often the page reads the account again (a settlement moves it without the page's doing). */
const REFRESH_MS = 5_000;
/** Blocks per `eth_getLogs` request, as the ledger reads them. */
const CHUNK = 5_000n;

/** One conference opened from the account, as the chain tells it. */
interface Opened {
  id: number;
  nonce: bigint;
  termsId: number;
  model: string;
  tokenId: number;
  status: string;
  locked: bigint;
  charge: bigint | null;
  refund: bigint | null;
}

/** One token's section: its figures, redrawn in place, and its forms. */
interface TokenSection {
  element: HTMLElement;
  update(a: Account, chainNow: number): void;
}

const page: Page = async (root) => {
  const cfg = await config();
  const reader = publicClient(cfg);
  const activationWindow = Number(await reader.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'ACTIVATION_WINDOW' }));
  const body = h('div', { id: 'account-page' });
  replace(
    root,
    h('h1', {}, 'My account'),
    h('p', { class: 'hint' },
      'Deposit once, then open conferences from the offers by signing an order in your wallet: no transaction and no gas per conference. ',
      'Each conference locks the most it can cost from your free balance; at its settlement the charge goes to the providers and the rest is free again. ',
      `A withdrawal waits ${formatDuration(activationWindow)} after you request it (the activation window), so that an order the service already accepted can still be opened; then you complete it and receive what is free, up to the amount requested.`),
    body,
  );

  let me: Address | null = null;
  let sections = new Map<number, TokenSection>();
  let opened: HTMLElement = h('section');
  let generation = 0;
  let busy = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  async function draw(): Promise<void> {
    const mine = ++generation;
    clearTimeout(timer);
    me = account();
    if (!me) {
      replace(body,
        h('p', {}, 'Connect your wallet to see your account.'),
        h('button', { type: 'button', id: 'account-connect', onclick: () => void connect().catch((err) => showError(userMessage(err))) }, 'Connect wallet'));
      return;
    }
    sections = new Map(cfg.tokens.map((t) => [t.id, tokenSection(t)]));
    opened = h('section', { class: 'card', id: 'account-agreements-box', 'aria-labelledby': 'account-agreements-title' },
      h('h2', { id: 'account-agreements-title' }, 'Conferences opened from the account'),
      h('p', { class: 'hint' }, 'Reading them from the escrow…'));
    replace(body, ...[...sections.values()].map((s) => s.element), opened, pendingOrders(me));
    if (mine === generation) await refresh();
  }

  /** Cancelling the orders this browser signed that the service has not opened (their nonces' word, all
   *  bits: the opened ones stay opened, the others can no longer be). */
  function pendingOrders(who: Address): HTMLElement {
    const word = orderWord(cfg, who);
    const section = h('section', { class: 'card', id: 'account-orders', 'aria-labelledby': 'account-orders-title' },
      h('h2', { id: 'account-orders-title' }, 'Orders not opened yet'));
    if (word === null) {
      section.append(h('p', { class: 'hint' }, 'This browser has signed no order for this account.'));
      return section;
    }
    const cancel = h('button', { type: 'button', id: 'cancel-orders', class: 'secondary' }, 'Cancel the orders not opened yet');
    cancel.addEventListener('click', () => void (async () => {
      const ok = await act('cancel the orders not opened yet', { address: cfg.escrow, abi: escrowAbi, functionName: 'cancelOrders', args: [word, (1n << 256n) - 1n] },
        'Every order this browser signed that was not opened yet is cancelled: the service can no longer open it.');
      if (ok) {
        forgetOrderWord(cfg, who);
        section.replaceWith(pendingOrders(who));
      }
    })());
    section.append(
      h('p', { class: 'hint' }, 'An order you signed here is opened by the service when it can serve it, until its deadline. Cancelling makes every one the service has not opened yet unusable; the opened ones stay.'),
      cancel);
    return section;
  }

  /** Reads the account in every token and the conferences opened from it, and redraws the figures. */
  async function refresh(): Promise<void> {
    const mine = generation;
    clearTimeout(timer);
    const who = me;
    if (!who) return;
    try {
      const [head, ...accounts] = await Promise.all([reader.getBlock({ blockTag: 'latest' }), ...cfg.tokens.map((t) => readAccount(reader, cfg, who, t.id))]);
      if (mine !== generation) return;
      cfg.tokens.forEach((t, i) => sections.get(t.id)?.update(accounts[i], Number(head.timestamp)));
      const list = await readOpened(cfg, who, head.number);
      if (mine !== generation) return;
      drawOpened(list);
      body.dataset.ready = '';
      body.dataset.block = String(head.number);
    } catch (err) {
      if (mine === generation) showNotice(`The escrow could not be read: ${userMessage(err)}`);
    } finally {
      if (mine === generation) timer = setTimeout(() => void refresh(), REFRESH_MS);
    }
  }

  /** Sends a call to the escrow (or the token), then reads the account again. */
  async function act(what: string, call: Parameters<typeof send>[1], done: string): Promise<boolean> {
    if (busy) return false;
    busy = true;
    showError(null);
    for (const b of body.querySelectorAll<HTMLButtonElement>('button')) b.disabled = true;
    try {
      await send(what, call);
      showNotice(done);
      return true;
    } catch (err) {
      showError(userMessage(err));
      return false;
    } finally {
      busy = false;
      for (const b of body.querySelectorAll<HTMLButtonElement>('button')) b.disabled = false;
      await refresh();
    }
  }

  function tokenSection(t: TokenInfo): TokenSection {
    const id = t.id;
    const free = exactAmount(`free-${id}`, t);
    const locked = exactAmount(`locked-${id}`, t);
    const requested = exactAmount(`withdrawal-amount-${id}`, t);
    const withdrawalLine = h('dd', { id: `withdrawal-${id}`, 'data-testid': `withdrawal-${id}`, 'data-wei': '0', 'data-due-at': '' }, 'none');
    const complete = h('button', { type: 'button', id: `complete-withdrawal-${id}`, hidden: true }, 'Complete the withdrawal');
    const cancel = h('button', { type: 'button', id: `cancel-withdrawal-${id}`, class: 'secondary', hidden: true }, 'Cancel the request');
    let current: Account | null = null;

    // Deposit: the amount in the token's unit; a token needs the escrow's allowance first.
    const depositInput = h('input', { type: 'text', inputmode: 'decimal', id: `deposit-amount-${id}`, name: 'amount', autocomplete: 'off', required: true, placeholder: '0.1' });
    const approve = h('button', { type: 'button', id: `deposit-approve-${id}`, hidden: true }, 'Approve');
    const deposit = h('button', { type: 'submit', id: `deposit-${id}` }, 'Deposit');
    const depositForm = h('form', { id: `deposit-form-${id}`, novalidate: true },
      h('h3', {}, `Deposit ${t.symbol}`),
      h('label', { for: `deposit-amount-${id}` }, `Amount (${t.symbol})`),
      depositInput,
      h('div', { class: 'row' }, approve, deposit));

    const withdrawInput = h('input', { type: 'text', inputmode: 'decimal', id: `withdraw-amount-${id}`, name: 'amount', autocomplete: 'off', required: true, placeholder: 'all that is free' });
    const requestButton = h('button', { type: 'submit', id: `request-withdrawal-${id}`, class: 'secondary' }, 'Request a withdrawal');
    const withdrawForm = h('form', { id: `withdraw-form-${id}`, novalidate: true },
      h('h3', {}, `Withdraw ${t.symbol}`),
      h('label', { for: `withdraw-amount-${id}` }, `Amount (${t.symbol}); empty: all that is free`),
      withdrawInput,
      h('p', { class: 'hint' }, `Due ${formatDuration(activationWindow)} after the request; a new request replaces the pending one and waits again.`),
      h('div', { class: 'row' }, requestButton));

    const amountOf = (input: HTMLInputElement, fallback: bigint | null): bigint => {
      const text = input.value.trim();
      if (!text && fallback !== null) return fallback;
      if (!/^\d+(\.\d+)?$/.test(text)) throw new UserError(`Enter an amount in ${t.symbol}, such as 0.5.`);
      if ((text.split('.')[1]?.length ?? 0) > t.decimals) throw new UserError(`${t.symbol} has at most ${t.decimals} decimals.`);
      const units = parseUnits(text, t.decimals);
      if (units === 0n) throw new UserError('Enter an amount above zero.');
      return units;
    };

    /** Whether the deposit needs an approval first (a token whose allowance is below the amount). */
    let allowanceSeq = 0;
    async function checkAllowance(): Promise<void> {
      if (t.address === null || !me) return;
      const mine = ++allowanceSeq;
      let units: bigint;
      try {
        units = amountOf(depositInput, null);
      } catch {
        approve.hidden = true;
        return;
      }
      const allowance = (await reader.readContract({ address: t.address, abi: erc20Abi, functionName: 'allowance', args: [me, cfg.escrow] })) as bigint;
      if (mine !== allowanceSeq) return;
      approve.hidden = allowance >= units;
      approve.textContent = `Approve ${formatAmount(units, t)}`;
      deposit.disabled = busy || !approve.hidden;
    }
    depositInput.addEventListener('input', () => void checkAllowance().catch(() => {}));

    approve.addEventListener('click', () => void (async () => {
      if (t.address === null) return;
      try {
        const units = amountOf(depositInput, null);
        await act(`allow the escrow to take ${formatAmount(units, t)}`, { address: t.address, abi: erc20Abi, functionName: 'approve', args: [cfg.escrow, units] },
          `Approved: the escrow may now take ${formatAmount(units, t)} into your account.`);
      } catch (err) {
        showError(userMessage(err));
      }
      await checkAllowance();
    })());

    depositForm.addEventListener('submit', (event) => {
      event.preventDefault();
      void (async () => {
        showError(null);
        try {
          const units = amountOf(depositInput, null);
          const ok = await act(`deposit ${formatAmount(units, t)} into your account`,
            { address: cfg.escrow, abi: accountAbi, functionName: 'depositToAccount', args: [id, units], value: t.address === null ? units : undefined },
            `Deposited ${formatAmount(units, t)}: it is free to open conferences with.`);
          if (ok) depositInput.value = '';
        } catch (err) {
          showError(userMessage(err));
        }
        await checkAllowance();
      })();
    });

    withdrawForm.addEventListener('submit', (event) => {
      event.preventDefault();
      void (async () => {
        showError(null);
        try {
          const units = amountOf(withdrawInput, current?.free ?? null);
          if (units === 0n) throw new UserError('Nothing is free to withdraw.');
          const ok = await act(`request a withdrawal of ${formatAmount(units, t)}`, { address: cfg.escrow, abi: accountAbi, functionName: 'requestWithdrawal', args: [id, units] },
            `Withdrawal of ${formatAmount(units, t)} requested: complete it once it is due.`);
          if (ok) withdrawInput.value = '';
        } catch (err) {
          showError(userMessage(err));
        }
      })();
    });

    complete.addEventListener('click', () => void act('complete the withdrawal', { address: cfg.escrow, abi: accountAbi, functionName: 'completeWithdrawal', args: [id] },
      'Withdrawn: the money is in your wallet.'));
    cancel.addEventListener('click', () => void act('cancel the withdrawal request', { address: cfg.escrow, abi: accountAbi, functionName: 'requestWithdrawal', args: [id, 0n] },
      'The withdrawal request is cancelled.'));

    const element = h('section', { class: 'card account-token', 'data-token-id': id, 'aria-labelledby': `account-${id}-title` },
      h('h2', { id: `account-${id}-title` }, `${t.symbol}`),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Free'), h('dd', {}, free.element, h('span', { class: 'hint' }, ' to open conferences with, or to withdraw')),
        h('dt', {}, 'Locked'), h('dd', {}, locked.element, h('span', { class: 'hint' }, ' by conferences not yet settled')),
        h('dt', {}, 'Withdrawal requested'), withdrawalLine),
      h('div', { class: 'row' }, complete, cancel),
      h('div', { class: 'account-forms' }, depositForm, withdrawForm));

    return {
      element,
      update(a: Account, head: number) {
        current = a;
        free.set(a.free);
        locked.set(a.locked);
        element.dataset.free = a.free.toString();
        element.dataset.locked = a.locked.toString();
        if (a.withdrawal === 0n) {
          withdrawalLine.dataset.wei = '0';
          withdrawalLine.dataset.dueAt = '';
          replace(withdrawalLine, 'none');
          complete.hidden = true;
          cancel.hidden = true;
          return;
        }
        const dueAt = a.withdrawalAt + activationWindow;
        const due = head >= dueAt;
        withdrawalLine.dataset.wei = a.withdrawal.toString();
        withdrawalLine.dataset.dueAt = String(dueAt);
        withdrawalLine.dataset.due = String(due);
        requested.set(a.withdrawal);
        replace(withdrawalLine, requested.element,
          due ? `, due since ${formatTime(dueAt)}` : `, due at ${formatTime(dueAt)} (in ${formatDuration(dueAt - head)})`,
          a.free < a.withdrawal ? h('span', { class: 'hint' }, ` — completing it now pays what is free, ${formatAmount(a.free, t)}`) : '');
        complete.hidden = false;
        cancel.hidden = false;
        complete.disabled = busy || !due;
        complete.textContent = due ? `Complete the withdrawal of ${formatAmount(a.withdrawal < a.free ? a.withdrawal : a.free, t)}` : `Complete the withdrawal (due at ${formatTime(dueAt)})`;
      },
    };
  }

  function drawOpened(list: Opened[]): void {
    const heading = h('h2', { id: 'account-agreements-title' }, 'Conferences opened from the account');
    if (list.length === 0) {
      replace(opened, heading, h('p', { id: 'account-agreements-empty' }, 'None yet. ', h('a', { href: '/' }, 'Choose an offer'), ' and open it “from my account”.'));
      return;
    }
    const columns = ['Conference', 'Offer', 'Status', 'Locked', 'Charged', 'Back to free'];
    replace(opened, heading, scrollBox('Conferences opened from the account',
      h('table', { id: 'account-agreements' },
        h('caption', { class: 'visually-hidden' }, 'Conferences opened from the account, newest first'),
        h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ...list.map((o) => {
          const t = tokenOf(cfg, o.tokenId);
          const cell = (value: bigint | null, figure: string) => h('td', { class: 'amount', 'data-figure': figure, 'data-wei': value === null ? '' : value.toString() }, value === null ? '—' : formatAmount(value, t));
          return h('tr', { 'data-testid': 'account-agreement', 'data-agreement-id': o.id, 'data-status': o.status, 'data-nonce': o.nonce.toString() },
            h('th', { scope: 'row' }, h('a', { href: `/agreement/${o.id}` }, `#${o.id}`)),
            h('td', {}, `terms ${o.termsId}, ${o.model}`),
            h('td', {}, h('span', { class: 'badge', 'data-status': o.status }, o.status)),
            cell(o.locked, 'locked'),
            cell(o.charge, 'charge'),
            cell(o.refund, 'refund'));
        })))));
  }

  /** The conferences the customer opened from its account: `OrderFilled` (customer indexed), with each
   *  one's agreement and lock read in one multicall and its settlement from `AgreementSettled`. */
  async function readOpened(c: Config, customer: Address, toBlock: bigint): Promise<Opened[]> {
    /** The escrow's `eventName` events matching `args` up to `toBlock`, in chunks as the ledger reads them. */
    const events = async <T>(eventName: string, args: Record<string, unknown>): Promise<T[]> => {
      const out: T[] = [];
      for (let from = BigInt(c.deployBlock); from <= toBlock; from += CHUNK) {
        const to = from + CHUNK - 1n < toBlock ? from + CHUNK - 1n : toBlock;
        out.push(...((await reader.getContractEvents({ address: c.escrow, abi: escrowAbi, eventName, args, fromBlock: from, toBlock: to })) as unknown as T[]));
      }
      return out;
    };
    const filled = (await events<{ args: { agreementId: bigint; nonce: bigint } }>('OrderFilled', { customer })).map((l) => ({ id: l.args.agreementId, nonce: l.args.nonce }));
    if (filled.length === 0) return [];
    const ids = filled.map((f) => f.id);
    const [records, deposits, settled] = await Promise.all([
      Promise.all(ids.map((id) => reader.readContract({ address: c.escrow, abi: escrowAbi, functionName: 'agreementOf', args: [id] }) as Promise<ChainAgreement>)),
      Promise.all(ids.map((id) => reader.readContract({ address: c.escrow, abi: escrowAbi, functionName: 'depositOf', args: [id] }) as Promise<bigint>)),
      events<{ args: { agreementId: bigint; charge: bigint; refund: bigint } }>('AgreementSettled', { agreementId: ids }),
    ]);
    const settlement = new Map(settled.map((s) => [s.args.agreementId, s.args]));
    return filled
      .map((f, i) => {
        const a = records[i];
        const s = settlement.get(f.id);
        const status = CHAIN_STATUS[Number(a.status)] ?? `status ${a.status}`;
        return {
          id: Number(f.id), nonce: f.nonce, termsId: Number(a.termsId), model: MODELS[Number(a.model)] ?? `model ${a.model}`, tokenId: Number(a.tokenId),
          status, locked: deposits[i], charge: s ? s.charge : status === 'refunded' ? 0n : null, refund: s ? s.refund : status === 'refunded' ? deposits[i] : null,
        };
      })
      .sort((x, y) => y.id - x.id);
  }

  const unwatch = onWalletChange(() => void draw());
  await draw();
  return () => {
    generation++;
    clearTimeout(timer);
    unwatch();
  };
};
export default page;
