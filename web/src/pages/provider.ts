// The provider page (`/provider`): register in the ProviderRegistry or update one's payout, regions and
// GDPR declaration; the offers one takes part in and one's price component; the income of every
// settlement split as the escrow splits it (ledger.ts), per offer and per agreement, beside what the
// escrow holds to withdraw; a monitor's signed availability reports, each beside the settlement it made;
// the consensus decisions: proposals, votes, execution.
import { BaseError, ContractFunctionRevertedError, getAddress, isAddress, type Address } from 'viem';
import { api, type Report } from '../api';
import { bookAbi, escrowAbi, explorerLink, publicClient, registryAbi } from '../chain';
import { config, regionNames, token, type Config } from '../config';
import { h, replace, scrollBox, showError, showNotice } from '../dom';
import { userMessage } from '../errors';
import { formatAmount, formatBps, formatTime, shortAddress } from '../format';
import { incomeOf, readEvents, readLedger, readOffer, readTerms, type ChainOffer, type ChainTerms, type IncomeLine, type Share } from '../ledger';
import type { Page } from '../router';
import { account, connect, onWalletChange, send } from '../wallet';

/** `IProviderRegistry.Role`, in order. */
const ROLES = ['Infrastructure', 'Conference software', 'Monitoring', 'Other'];
/** The role whose providers are their offers' independent monitors. */
const MONITORING = 2;

/** The refusals a provider can meet, in words (some name whom they concern, from the error's
 *  arguments); anything else as errors.ts explains it. */
const REFUSALS: Record<string, string | ((args: readonly unknown[]) => string)> = {
  Registry_AlreadyRegistered: 'This account is already a registered provider: reload the page.',
  Registry_InvalidProvider: 'Give a payout address and at least one region.',
  Registry_NotActiveProvider: 'This account is not an active provider (it never registered, or it left).',
  Registry_NotRegistered: 'This account is not a registered provider: register it first.',
  OfferBook_InvalidTerms: 'Every price component must be more than zero, a proposal names at most 16 providers, and a minimum charge is for flexible-period offers only (and required there).',
  OfferBook_WrongOfferStatus: 'The offer is not in the state this needs: components are set while it is a draft, proposals made while it is open.',
  OfferBook_NotAProvider: 'Your provider is not one of this offer’s current providers, or it has left the registry (a provider that left no longer proposes).',
  OfferBook_DuplicateProvider: 'A provider is named twice in the proposal.',
  OfferBook_ProviderInactive: 'A provider in the proposal is not registered, or has left the registry.',
  OfferBook_NoCommonRegion: 'The proposed providers serve no region in common.',
  OfferBook_VoteClosed: 'The vote on this proposal is closed (its deadline passed, or it was executed).',
  OfferBook_NotAVoter: 'Only the offer’s owner, its providers and the providers a proposal would add vote on it, and only while they are registered.',
  OfferBook_AlreadyVoted: 'You have already voted on this proposal.',
  OfferBook_AlreadyExecuted: 'This proposal was already executed.',
  OfferBook_ProposalStale: 'The offer’s terms changed since this proposal was made (or the offer closed): it can no longer be executed.',
  OfferBook_NoQuorum: 'The proposal has not passed: more than half of its electorate (the offer’s providers still registered when it was made) must vote yes.',
  OfferBook_ConsentMissing: ([, providerId]) =>
    Number(providerId) === 0
      ? 'The proposal has not passed: it changes the margin or lowers the owner’s part of the minimum charge, and the offer’s owner has not voted yes.'
      : `The proposal has not passed: provider ${providerId} has not voted yes, and the proposal adds it or lowers its pay (its component or its part of the minimum charge).`,
};

function message(err: unknown): string {
  if (err instanceof BaseError) {
    const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
    const data = reverted instanceof ContractFunctionRevertedError ? reverted.data : undefined;
    const refusal = data?.errorName ? REFUSALS[data.errorName] : undefined;
    if (typeof refusal === 'function') return refusal(data?.args ?? []);
    if (refusal) return refusal;
  }
  return userMessage(err);
}

interface Provider {
  id: number;
  account: Address;
  role: number;
  active: boolean;
  gdpr: boolean;
  regions: number;
  payout: Address;
}

interface Proposal {
  id: number;
  offerId: number;
  baseTermsId: number;
  deadline: number;
  /** Yes votes of the members of the base terms, and how many of them were registered when it was made. */
  yesVotes: number;
  electorate: number;
  executed: boolean;
  /** The new version's GDPR status and regions, computed when it was made. */
  gdpr: boolean;
  regions: number;
  margin: bigint;
  minimumCharge: bigint;
  shares: Share[];
  passed: boolean;
  /** Ballots by provider id; 0 is the offer's owner. */
  votes: Map<number, boolean>;
  executedTermsId: number | null;
}

/** Who a proposal's voter is in words: provider id 0 is the offer's owner. */
const voterName = (providerId: number) => (providerId === 0 ? 'the owner' : `provider ${providerId}`);

/** Whose yes a proposal still lacks beyond the quorum (the offer book's consent rule, `_passFailure`):
 *  each provider it adds or pays less (a lower component, or a lower part ⌊minimum · c / P⌋ of the
 *  minimum charge), and the owner (0) if it changes the margin or lowers the owner's part of the minimum. */
function consentsMissing(pr: Pick<Proposal, 'shares' | 'margin' | 'minimumCharge' | 'votes'>, base: Pick<ChainTerms, 'shares' | 'margin' | 'minimumCharge' | 'price'>): number[] {
  const price = pr.shares.reduce((sum, s) => sum + s.component, pr.margin);
  const part = (minimum: bigint, component: bigint, total: bigint) => (total === 0n ? 0n : (minimum * component) / total);
  const missing = pr.shares
    .filter((s) => {
      const was = base.shares.find((b) => b.providerId === s.providerId)?.component ?? 0n;
      const lowered = was === 0n || s.component < was || part(pr.minimumCharge, s.component, price) < part(base.minimumCharge, was, base.price);
      return lowered && pr.votes.get(s.providerId) !== true;
    })
    .map((s) => s.providerId);
  const ownerLowered = pr.margin !== base.margin || part(pr.minimumCharge, pr.margin, price) < part(base.minimumCharge, base.margin, base.price);
  if (ownerLowered && pr.votes.get(0) !== true) missing.push(0);
  return missing;
}

/** A decimal integer in base units, or an error sentence naming the field. */
function baseUnits(value: string, field: string): bigint {
  const text = value.trim();
  if (!/^\d+$/.test(text)) throw new Error(`${field} must be a whole number of base units (such as wei), got “${value}”.`);
  return BigInt(text);
}

function regionBoxes(cfg: Config, name: string, mask: number): HTMLElement {
  return h('fieldset', { class: 'regions' }, h('legend', {}, 'Regions served'),
    ...cfg.regions.map((region, bit) => h('label', {}, h('input', { type: 'checkbox', name, value: bit, checked: ((mask >> bit) & 1) === 1 }), ` ${region}`)));
}

function maskOf(form: HTMLFormElement, name: string): number {
  return [...form.querySelectorAll<HTMLInputElement>(`input[name="${name}"]:checked`)].reduce((m, box) => m | (1 << Number(box.value)), 0);
}

function payoutOf(form: HTMLFormElement): Address {
  const raw = (form.querySelector<HTMLInputElement>('[name="payout"]')!.value || '').trim();
  if (!isAddress(raw)) throw new Error(`The payout address “${raw}” is not an Ethereum address.`);
  return getAddress(raw);
}

const page: Page = async (root) => {
  const cfg = await config();
  const client = publicClient(cfg);
  let generation = 0;

  /** Runs a transaction from a button or form: disabled while it runs, its error as a sentence, the page redrawn after. */
  async function act(control: HTMLButtonElement | null, what: () => Promise<unknown>): Promise<void> {
    showError(null);
    if (control) control.disabled = true;
    try {
      await what();
      await render();
    } catch (err) {
      showError(message(err));
      if (control) control.disabled = false;
    }
  }

  async function render(): Promise<void> {
    const mine = ++generation;
    const who = account();
    if (!who) {
      replace(root, h('h1', {}, 'Providers'),
        h('p', {}, 'Providers split each offer’s income by their price components and decide its terms together. Connect the account your provider acts with.'),
        h('button', { type: 'button', id: 'provider-connect', class: 'button', onclick: () => void connect().catch((err) => showError(message(err))) }, 'Connect wallet'));
      return;
    }
    replace(root, h('h1', {}, 'Providers'), h('p', { id: 'provider-loading', role: 'status' }, 'Reading the registry, the offer book and the escrow…'));
    const id = Number(await client.readContract({ address: cfg.registry, abi: registryAbi, functionName: 'idOf', args: [who] }));
    if (mine !== generation) return;
    if (id === 0) {
      replace(root, h('h1', {}, 'Providers'), registerForm(who));
      return;
    }
    const p = (await client.readContract({ address: cfg.registry, abi: registryAbi, functionName: 'providerOf', args: [id] })) as Omit<Provider, 'id'>;
    const provider: Provider = { id, account: p.account, role: Number(p.role), active: p.active, gdpr: p.gdpr, regions: Number(p.regions), payout: p.payout };
    const sections = await Promise.all([offersAndProposals(provider), income(provider), provider.role === MONITORING ? reportsSection(provider) : null]);
    if (mine !== generation) return;
    replace(root, h('h1', {}, 'Providers'), providerCard(provider), sections[2], sections[1], ...sections[0]);
    root.dataset.ready = String(Date.now());
  }

  function registerForm(who: Address): HTMLElement {
    const form = h('form', { id: 'register-form', class: 'card' },
      h('h2', {}, 'Register as a provider'),
      h('p', { class: 'hint' }, `The account ${who} is not a provider yet. It will act for the provider (set components, vote); income goes to the payout address, which may be a cold wallet.`),
      h('label', {}, 'Role ', h('select', { id: 'role', name: 'role' }, ...ROLES.map((r, i) => h('option', { value: i }, r)))),
      h('label', {}, 'Payout address ', h('input', { id: 'payout', name: 'payout', class: 'mono', value: who, required: true, size: 44, autocomplete: 'off' })),
      regionBoxes(cfg, 'region', 0),
      h('label', {}, h('input', { type: 'checkbox', id: 'gdpr', name: 'gdpr' }), ' GDPR-compliant'),
      h('button', { type: 'submit', id: 'register', class: 'button' }, 'Register'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void act(form.querySelector('button'), async () => {
        const role = Number((form.querySelector('#role') as HTMLSelectElement).value);
        const args = [role, payoutOf(form), maskOf(form, 'region'), (form.querySelector('#gdpr') as HTMLInputElement).checked];
        await send('register as a provider', { address: cfg.registry, abi: registryAbi, functionName: 'register', args });
      });
    });
    return form;
  }

  function providerCard(p: Provider): HTMLElement {
    // A provider that left joins no new terms, so only its payout still matters: it keeps earning under
    // terms still open and must be able to move where that money goes. The registry still wants its
    // regions, which are sent as they are.
    const form = h('form', { id: 'update-form', 'data-payout-only': String(!p.active) },
      h('h3', {}, p.active ? 'Change payout, regions or GDPR' : 'Change the payout address'),
      h('label', {}, 'Payout address ', h('input', { name: 'payout', id: 'update-payout', class: 'mono', value: p.payout, required: true, size: 44, autocomplete: 'off' })),
      p.active ? regionBoxes(cfg, 'update-region', p.regions) : null,
      p.active ? h('label', {}, h('input', { type: 'checkbox', id: 'update-gdpr', checked: p.gdpr }), ' GDPR-compliant') : null,
      h('button', { type: 'submit', id: 'update', class: 'button secondary' }, 'Update'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void act(form.querySelector('button'), () => {
        const regions = p.active ? maskOf(form, 'update-region') : p.regions;
        const gdpr = p.active ? (form.querySelector('#update-gdpr') as HTMLInputElement).checked : p.gdpr;
        return send(p.active ? 'update your provider' : 'change your payout address', { address: cfg.registry, abi: registryAbi, functionName: 'update', args: [payoutOf(form), regions, gdpr] });
      });
    });
    return h('section', { class: 'card', id: 'provider', 'data-provider-id': p.id },
      h('h2', {}, `Provider ${p.id}`),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Id'), h('dd', { id: 'provider-id' }, p.id),
        h('dt', {}, 'Role'), h('dd', { id: 'provider-role', 'data-role': p.role }, ROLES[p.role] ?? `role ${p.role}`),
        h('dt', {}, 'Account'), h('dd', { class: 'mono' }, p.account),
        h('dt', {}, 'Payout address'), h('dd', { id: 'provider-payout', class: 'mono' }, p.payout),
        h('dt', {}, 'Regions'), h('dd', { id: 'provider-regions', 'data-mask': p.regions }, regionNames(cfg, p.regions).join(', ') || `mask ${p.regions}`),
        h('dt', {}, 'GDPR'), h('dd', { id: 'provider-gdpr', 'data-gdpr': String(p.gdpr) }, p.gdpr ? 'compliant' : 'not declared'),
        h('dt', {}, 'Status'), h('dd', { id: 'provider-status', 'data-active': String(p.active) }, p.active
          ? 'active'
          : 'left: no new offers, proposals or votes; it keeps earning under terms still open, its income stays withdrawable and its payout address can still be changed')),
      form);
  }

  // -------------------------------------------------------------------------------------------
  // Offers and proposals.
  // -------------------------------------------------------------------------------------------

  async function offersAndProposals(p: Provider): Promise<HTMLElement[]> {
    const offerCount = Number(await client.readContract({ address: cfg.book, abi: bookAbi, functionName: 'offerCount' }));
    const offers = await Promise.all(Array.from({ length: offerCount }, (_, i) => readOffer(client, cfg, i + 1)));
    const termsIds = [...new Set(offers.filter((o) => o.termsId).map((o) => o.termsId))];
    const terms = new Map<number, ChainTerms>(await Promise.all(termsIds.map(async (t) => [t, await readTerms(client, cfg, t)] as const)));
    /** The shares that count: the current terms' for an open or retired offer, the draft's otherwise. */
    // `offerOf` gives an opened offer's current terms' shares, margin and minimum charge (a draft's as drafted).
    const mine = offers.filter((o) => o.shares.some((s) => s.providerId === p.id));

    const proposalCount = Number(await client.readContract({ address: cfg.book, abi: bookAbi, functionName: 'proposalCount' }));
    const events = proposalCount ? await readEvents(client, cfg.book, bookAbi, BigInt(cfg.deployBlock), await client.getBlockNumber()) : [];
    const now = Number((await client.getBlock()).timestamp);
    const proposals: Proposal[] = await Promise.all(Array.from({ length: proposalCount }, async (_, i) => {
      const id = i + 1;
      const [raw, passed] = await Promise.all([
        client.readContract({ address: cfg.book, abi: bookAbi, functionName: 'proposalOf', args: [BigInt(id)] }),
        client.readContract({ address: cfg.book, abi: bookAbi, functionName: 'hasPassed', args: [BigInt(id)] }),
      ]);
      const r = raw as {
        offerId: number; baseTermsId: number; deadline: number; yesVotes: number; electorate: number; executed: boolean; gdpr: boolean; regions: number;
        margin: bigint; minimumCharge: bigint; shares: readonly { providerId: number; component: bigint }[];
      };
      const votes = new Map<number, boolean>();
      let executedTermsId: number | null = null;
      for (const e of events) {
        if (e.args.proposalId === undefined || Number(e.args.proposalId as bigint) !== id) continue;
        if (e.eventName === 'Voted') votes.set(Number(e.args.providerId), e.args.support as boolean);
        if (e.eventName === 'ProposalExecuted') executedTermsId = Number(e.args.termsId);
      }
      return {
        id, offerId: Number(r.offerId), baseTermsId: Number(r.baseTermsId), deadline: Number(r.deadline), yesVotes: Number(r.yesVotes), electorate: Number(r.electorate),
        executed: r.executed, gdpr: r.gdpr, regions: Number(r.regions),
        margin: BigInt(r.margin), minimumCharge: BigInt(r.minimumCharge), shares: r.shares.map((s) => ({ providerId: Number(s.providerId), component: BigInt(s.component) })),
        passed: passed as boolean, votes, executedTermsId,
      };
    }));
    // The members a proposal counts are those of the terms it was based on, which may be an older version.
    await Promise.all([...new Set(proposals.map((pr) => pr.baseTermsId))].filter((t) => !terms.has(t)).map(async (t) => terms.set(t, await readTerms(client, cfg, t))));
    const relevant = proposals.filter((pr) => mine.some((o) => o.id === pr.offerId) || pr.shares.some((s) => s.providerId === p.id)).reverse();
    return [offersSection(p, mine, terms), proposalsSection(p, relevant, offers, terms, now), proposeForm(p, mine.filter((o) => o.status === 'open'), terms)];
  }

  function offersSection(p: Provider, offers: ChainOffer[], terms: Map<number, ChainTerms>): HTMLElement {
    const rows = offers.map((o) => {
      const t = token(cfg, o.tokenId);
      const current = o.termsId ? terms.get(o.termsId)! : null;
      const shares = o.shares;
      const mineShare = shares.find((s) => s.providerId === p.id);
      const price = current ? current.price : shares.reduce((sum, s) => sum + s.component, o.margin);
      let action: HTMLElement | string = o.status === 'open' ? 'changes by proposal (below)' : '—';
      if (o.status === 'draft') {
        const input = h('input', { id: `component-${o.id}`, class: 'mono', inputmode: 'numeric', value: mineShare?.component ? String(mineShare.component) : '', size: 24, 'aria-label': `Your component of offer ${o.id}, in base units` });
        const button = h('button', { type: 'button', class: 'button small', 'data-set-component': o.id }, 'Set component');
        button.addEventListener('click', () => void act(button, () =>
          send(`set your component of offer ${o.id}`, { address: cfg.book, abi: bookAbi, functionName: 'setComponent', args: [o.id, baseUnits(input.value, 'The component')] })));
        action = h('span', { class: 'row' }, input, button);
      }
      return h('tr', { 'data-offer-id': o.id, 'data-status': o.status, 'data-terms-id': o.termsId },
        h('th', { scope: 'row' }, `Offer ${o.id}`),
        h('td', {}, o.model),
        h('td', {}, o.status, current ? ` (terms ${o.termsId})` : ''),
        h('td', { class: 'amount', 'data-component': mineShare ? String(mineShare.component) : '' }, mineShare?.component ? formatAmount(mineShare.component, t) : 'not set'),
        h('td', { class: 'amount', 'data-price': String(price) }, formatAmount(price, t)),
        h('td', {}, action),
        h('td', {}, shares.map((s) => `provider ${s.providerId}: ${s.component}`).join(', '), `; margin ${o.margin}`));
    });
    return h('section', { class: 'card', id: 'offers' },
      h('h2', {}, 'Your offers'),
      h('p', { class: 'hint' }, 'Each offer’s price is its providers’ components plus the owner’s margin; every charge is split in that proportion. Amounts in base units are per the model’s unit (conference, second or minute).'),
      offers.length
        ? scrollBox('Your offers', h('table', { id: 'offers-table' },
          h('thead', {}, h('tr', {}, ...['Offer', 'Model', 'Status', 'Your component', 'Price', '', 'Shares (base units)'].map((x) => h('th', { scope: 'col' }, x)))),
          h('tbody', {}, ...rows)))
        : h('p', { class: 'muted' }, 'No offer names your provider yet: an offer admin drafts offers and names their providers.'));
  }

  function proposalStatus(pr: Proposal, offer: ChainOffer | undefined, now: number): string {
    if (pr.executed) return 'executed';
    if (pr.passed) return 'passed';
    if (!offer || offer.status !== 'open' || offer.termsId !== pr.baseTermsId) return 'stale';
    if (now > pr.deadline) return 'expired';
    return 'open';
  }

  function proposalsSection(p: Provider, proposals: Proposal[], offers: ChainOffer[], terms: Map<number, ChainTerms>, now: number): HTMLElement {
    const rows = proposals.map((pr) => {
      const offer = offers.find((o) => o.id === pr.offerId);
      const t = token(cfg, offer?.tokenId ?? 0);
      const members = terms.get(pr.baseTermsId)?.shares ?? [];
      const status = proposalStatus(pr, offer, now);
      // A provider that left the registry votes no more.
      const canVote = p.active && status === 'open' && !pr.votes.has(p.id) && (members.some((s) => s.providerId === p.id) || pr.shares.some((s) => s.providerId === p.id));
      const actions: HTMLElement[] = [];
      if (canVote) {
        for (const support of [true, false]) {
          const button = h('button', { type: 'button', class: support ? 'button small' : 'button small secondary', [support ? 'data-vote-yes' : 'data-vote-no']: pr.id }, support ? 'Vote yes' : 'Vote no');
          button.addEventListener('click', () => void act(button, () =>
            send(`vote ${support ? 'yes' : 'no'} on proposal ${pr.id}`, { address: cfg.book, abi: bookAbi, functionName: 'vote', args: [BigInt(pr.id), support] })));
          actions.push(button);
        }
      }
      if (status === 'passed') {
        const button = h('button', { type: 'button', class: 'button small', 'data-execute': pr.id }, 'Execute');
        button.addEventListener('click', () => void act(button, () =>
          send(`execute proposal ${pr.id}`, { address: cfg.book, abi: bookAbi, functionName: 'execute', args: [BigInt(pr.id)] })));
        actions.push(button);
      }
      const total = pr.shares.reduce((sum, s) => sum + s.component, pr.margin);
      const ballots = [...pr.votes].map(([pid, yes]) => `${voterName(pid)}: ${yes ? 'yes' : 'no'}`);
      const base = terms.get(pr.baseTermsId);
      const missing = base && (status === 'open' || status === 'expired') ? consentsMissing(pr, base) : [];
      return h('tr', { 'data-proposal-id': pr.id, 'data-status': status, 'data-yes': pr.yesVotes, 'data-electorate': pr.electorate },
        h('th', { scope: 'row' }, `#${pr.id}`),
        h('td', {}, `offer ${pr.offerId} (from terms ${pr.baseTermsId})`),
        h('td', { class: 'proposal-status' }, status === 'executed' && pr.executedTermsId ? `executed: terms ${pr.executedTermsId}` : status),
        h('td', {}, ...actions),
        h('td', {}, h('ul', { class: 'plain' }, ...pr.shares.map((s) => h('li', { 'data-share-provider': s.providerId, 'data-component': String(s.component) }, `provider ${s.providerId}: ${formatAmount(s.component, t)}`))),
          h('span', { 'data-margin': String(pr.margin) }, `margin ${formatAmount(pr.margin, t)}`),
          pr.minimumCharge ? h('span', { 'data-minimum': String(pr.minimumCharge) }, `, minimum charge ${formatAmount(pr.minimumCharge, t)}`) : '',
          h('br'), h('span', { class: 'muted' }, `price ${formatAmount(total, t)}`),
          h('br'), h('span', { class: 'muted', 'data-regions': pr.regions }, `regions ${regionNames(cfg, pr.regions).join(', ') || `mask ${pr.regions}`}, GDPR ${pr.gdpr ? 'yes' : 'no'}`)),
        h('td', {}, `${pr.yesVotes} of ${pr.electorate} yes (more than ${Math.floor(pr.electorate / 2)} needed)`, h('br'),
          h('span', { class: 'muted', 'data-ballots': '' }, ballots.join(', ') || 'no votes yet'),
          missing.length ? h('br') : '',
          missing.length ? h('span', { 'data-consent-missing': missing.join(' ') }, `also needs the yes of ${missing.map(voterName).join(', ')}`) : ''),
        h('td', {}, formatTime(pr.deadline)));
    });
    return h('section', { class: 'card', id: 'proposals' },
      h('h2', {}, 'Proposals'),
      h('p', { class: 'hint' }, 'A proposal passes when, before its deadline, more than half of its electorate votes yes (the offer’s providers still registered when it was made), every provider it adds votes yes, every provider whose pay it lowers (its component, or its part of the minimum charge) votes yes, and the offer’s owner votes yes if it changes the margin or lowers the owner’s part of the minimum charge. Providers that left the registry no longer propose or vote. Anyone may then execute it, which opens a new terms version; agreements keep the terms they signed.'),
      proposals.length
        ? scrollBox('Proposals', h('table', { id: 'proposals-table' },
          h('thead', {}, h('tr', {}, ...['Proposal', 'Offer', 'Status', '', 'Proposed terms', 'Votes', 'Deadline'].map((x) => h('th', { scope: 'col' }, x)))),
          h('tbody', {}, ...rows)))
        : h('p', { class: 'muted' }, 'No proposal on your offers.'));
  }

  function proposeForm(p: Provider, offers: ChainOffer[], terms: Map<number, ChainTerms>): HTMLElement {
    if (!p.active) return h('section', { class: 'card', id: 'propose' }, h('h2', {}, 'Propose new terms'), h('p', { class: 'muted' }, 'Your provider has left the registry: it no longer proposes or votes.'));
    if (!offers.length) return h('section', { class: 'card', id: 'propose' }, h('h2', {}, 'Propose new terms'), h('p', { class: 'muted' }, 'You can propose changes to the open offers you take part in; you take part in none.'));
    const select = h('select', { id: 'propose-offer' }, ...offers.map((o) => h('option', { value: o.id }, `Offer ${o.id} (${o.model}, terms ${o.termsId})`)));
    const fields = h('div', { id: 'propose-fields' });
    const fill = () => {
      const offer = offers.find((o) => String(o.id) === select.value)!;
      const current = terms.get(offer.termsId)!;
      replace(fields,
        ...current.shares.map((s) => h('label', {}, `Provider ${s.providerId}${s.providerId === p.id ? ' (you)' : ''} component `,
          h('input', { class: 'mono', inputmode: 'numeric', 'data-share-provider': s.providerId, value: String(s.component), size: 24 }))),
        h('label', {}, 'Add provider id (optional) ', h('input', { id: 'propose-add-id', inputmode: 'numeric', size: 6 }), ' with component ', h('input', { id: 'propose-add-component', class: 'mono', inputmode: 'numeric', size: 24 })),
        h('label', {}, 'Owner’s margin ', h('input', { id: 'propose-margin', class: 'mono', inputmode: 'numeric', value: String(current.margin), size: 24 })),
        h('label', {}, 'Minimum charge (flexible period only) ', h('input', { id: 'propose-minimum', class: 'mono', inputmode: 'numeric', value: String(current.minimumCharge), size: 24 })));
    };
    select.addEventListener('change', fill);
    fill();
    const form = h('form', { id: 'propose-form' }, h('label', {}, 'Offer ', select), fields, h('p', { class: 'hint' }, 'Amounts in base units (wei for ETH) per the model’s unit. Remove a provider by emptying its component.'),
      h('button', { type: 'submit', id: 'propose-submit', class: 'button' }, 'Propose'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void act(form.querySelector('button'), async () => {
        const shares: { providerId: number; component: bigint }[] = [];
        for (const input of form.querySelectorAll<HTMLInputElement>('input[data-share-provider]')) {
          if (input.value.trim()) shares.push({ providerId: Number(input.dataset.shareProvider), component: baseUnits(input.value, `Provider ${input.dataset.shareProvider}'s component`) });
        }
        const addId = (form.querySelector('#propose-add-id') as HTMLInputElement).value.trim();
        if (addId) {
          if (!/^\d+$/.test(addId) || Number(addId) === 0) throw new Error(`The provider id to add must be a positive whole number, got “${addId}”.`);
          shares.push({ providerId: Number(addId), component: baseUnits((form.querySelector('#propose-add-component') as HTMLInputElement).value, 'The added provider’s component') });
        }
        const margin = baseUnits((form.querySelector('#propose-margin') as HTMLInputElement).value, 'The margin');
        const minimum = baseUnits((form.querySelector('#propose-minimum') as HTMLInputElement).value || '0', 'The minimum charge');
        await send(`propose new terms for offer ${select.value}`, { address: cfg.book, abi: bookAbi, functionName: 'propose', args: [Number(select.value), shares, margin, minimum] });
      });
    });
    return h('section', { class: 'card', id: 'propose' }, h('h2', {}, 'Propose new terms'), form);
  }

  // -------------------------------------------------------------------------------------------
  // A monitor's reports.
  // -------------------------------------------------------------------------------------------

  /** The reports the service received from this monitor, newest first, each beside what the escrow
   *  settled for its conference: the chain's nth settlement of an agreement is its conference n. */
  async function reportsSection(p: Provider): Promise<HTMLElement> {
    let reports: Report[];
    try {
      reports = await api.monitorReports(p.account);
    } catch (err) {
      return h('section', { class: 'card', id: 'reports' }, h('h2', {}, 'Your availability reports'), h('p', { class: 'alert' }, `The service’s record of your reports could not be read: ${message(err)}`));
    }
    const agreements = [...new Set(reports.map((r) => r.agreement))];
    const settled = new Map(await Promise.all(agreements.map(async (id) => {
      const logs = await client.getContractEvents({ address: cfg.escrow, abi: escrowAbi, eventName: 'AgreementSettled', args: { agreementId: BigInt(id) }, fromBlock: BigInt(cfg.deployBlock) });
      return [id, logs.map((l) => (l as unknown as { args: { availabilityBps: number; evidence: string } }).args)] as const;
    })));
    const columns = ['Agreement', 'Conference', 'Period', 'Availability', 'Commitment', 'Records', 'On-chain'];
    const rows = reports.map((r) => {
      const onChain = settled.get(r.agreement)?.[r.session - 1];
      const state = !onChain ? 'pending' : onChain.evidence.toLowerCase() === r.evidence.toLowerCase() && Number(onChain.availabilityBps) === r.availabilityBps ? 'settled' : 'differs';
      return h('tr', { 'data-report-agreement': r.agreement, 'data-report-session': r.session, 'data-bps': r.availabilityBps, 'data-evidence': r.evidence, 'data-onchain': state },
        h('th', { scope: 'row' }, h('a', { href: `/agreement/${r.agreement}` }, `#${r.agreement}`)),
        h('td', {}, r.session),
        h('td', {}, `${formatTime(r.startedAt)} – ${formatTime(r.endedAt)}`),
        h('td', {}, formatBps(r.availabilityBps)),
        h('td', { class: 'mono', title: r.evidence }, shortAddress(r.evidence)),
        h('td', {}, `${r.records.length} at ${r.intervalMs} ms`),
        h('td', { class: state === 'differs' ? 'check warn' : 'check' },
          state === 'settled' ? '✓ settled with this report' : state === 'pending' ? 'not settled yet' : '⚠ settled with another figure or commitment'));
    });
    return h('section', { class: 'card', id: 'reports', 'aria-labelledby': 'reports-title' },
      h('h2', { id: 'reports-title' }, 'Your availability reports'),
      h('p', { class: 'hint' }, 'You are the independent monitor of the offers that name your provider: only your signed report of a conference settles it. These are the reports the service received from you, newest first, each with the commitment to its probe records.'),
      reports.length
        ? h('div', { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-label': 'Your availability reports' }, h('table', { id: 'reports-table' },
          h('caption', {}, 'Your signed availability reports, newest first'),
          h('thead', {}, h('tr', {}, ...columns.map((x) => h('th', { scope: 'col' }, x)))),
          h('tbody', {}, ...rows)))
        : h('p', { class: 'muted' }, 'The service has received no report from you yet.'));
  }

  // -------------------------------------------------------------------------------------------
  // Income and earnings.
  // -------------------------------------------------------------------------------------------

  async function income(p: Provider): Promise<HTMLElement> {
    const ledger = await readLedger(client, cfg);
    const lines = incomeOf(ledger, p.id);
    const earnings = await Promise.all(cfg.tokens.map(async (t) =>
      [t.id, (await client.readContract({ address: cfg.escrow, abi: escrowAbi, functionName: 'earningsOf', args: [p.id, t.id] })) as bigint] as const));

    const perOffer = new Map<string, { offerId: number; tokenId: number; amount: bigint; count: number }>();
    for (const line of lines) {
      const key = `${line.offerId}:${line.tokenId}`;
      const entry = perOffer.get(key) ?? { offerId: line.offerId, tokenId: line.tokenId, amount: 0n, count: 0 };
      entry.amount += line.amount;
      entry.count += 1;
      perOffer.set(key, entry);
    }
    const offerRows = [...perOffer.values()].sort((a, b) => a.offerId - b.offerId).map((e) =>
      h('tr', { 'data-income-offer': e.offerId, 'data-token-id': e.tokenId, 'data-wei': String(e.amount) },
        h('th', { scope: 'row' }, `Offer ${e.offerId}`), h('td', {}, e.count), h('td', { class: 'amount' }, formatAmount(e.amount, token(cfg, e.tokenId)))));
    // One row per agreement: a time-limited one is charged (and split) once per conference.
    const perAgreement = new Map<number, IncomeLine & { settlements: number }>();
    for (const line of lines) {
      const entry = perAgreement.get(line.agreementId);
      if (entry) {
        entry.charge += line.charge;
        entry.amount += line.amount;
        entry.settlements += 1;
        entry.settleTx = line.settleTx;
      } else perAgreement.set(line.agreementId, { ...line, settlements: 1 });
    }
    const agreementRows = [...perAgreement.values()].map((l) => {
      const link = l.settleTx ? explorerLink(cfg, 'tx', l.settleTx) : null;
      return h('tr', { 'data-income-agreement': l.agreementId, 'data-wei': String(l.amount), 'data-charge': String(l.charge) },
        h('th', { scope: 'row' }, h('a', { href: `/agreement/${l.agreementId}` }, `#${l.agreementId}`)),
        h('td', {}, `offer ${l.offerId}, terms ${l.termsId}`, l.settlements > 1 ? h('span', { class: 'muted' }, ` (${l.settlements} conferences)`) : ''),
        h('td', { class: 'amount' }, formatAmount(l.charge, token(cfg, l.tokenId))),
        h('td', { class: 'amount' }, formatAmount(l.amount, token(cfg, l.tokenId))),
        h('td', { class: 'mono' }, l.settleTx ? (link ? h('a', { href: link, target: '_blank', rel: 'noopener' }, shortAddress(l.settleTx)) : shortAddress(l.settleTx)) : '—'));
    });
    const earningRows = earnings.map(([tokenId, amount]) => {
      const t = token(cfg, tokenId);
      const earned = lines.filter((l) => l.tokenId === tokenId).reduce((s, l) => s + l.amount, 0n);
      const withdrawn = ledger.withdrawals.filter((w) => w.providerId === p.id && w.tokenId === tokenId).reduce((s, w) => s + w.amount, 0n);
      const agrees = earned - withdrawn === amount;
      const button = h('button', { type: 'button', class: 'button small', 'data-withdraw': tokenId, disabled: amount === 0n }, `Withdraw to ${shortAddress(p.payout)}`);
      button.addEventListener('click', () => void act(button, async () => {
        await send(`withdraw your ${t.symbol} earnings`, { address: cfg.escrow, abi: escrowAbi, functionName: 'withdrawEarnings', args: [p.id, tokenId] });
        showNotice(`${formatAmount(amount, t)} sent to ${p.payout}.`);
      }));
      return h('tr', { 'data-earnings-token': tokenId, 'data-wei': String(amount), 'data-earned': String(earned), 'data-withdrawn': String(withdrawn) },
        h('th', { scope: 'row' }, t.symbol),
        h('td', { class: 'amount' }, formatAmount(earned, t)),
        h('td', { class: 'amount' }, formatAmount(withdrawn, t)),
        h('td', { class: 'amount', id: `earnings-${tokenId}` }, formatAmount(amount, t)),
        h('td', { class: agrees ? 'check ok' : 'check warn', 'data-agrees': String(agrees) }, agrees ? '✓ earned − withdrawn' : `⚠ the events give ${formatAmount(earned - withdrawn, t)}`),
        h('td', {}, button));
    });
    return h('section', { class: 'card', id: 'income' },
      h('h2', {}, 'Income'),
      h('p', { class: 'hint' }, 'Every settled charge is split as the escrow splits it: your part is ⌊charge × your component ÷ price⌋ of the terms the agreement signed; the owner gets the margin and the rounding dust. Computed here from the escrow’s events.'),
      h('h3', {}, 'To withdraw'),
      h('table', { id: 'earnings-table' }, h('thead', {}, h('tr', {}, ...['Token', 'Earned', 'Withdrawn', 'Held by the escrow', 'Check', ''].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, ...earningRows)),
      h('h3', {}, 'Per offer'),
      offerRows.length ? h('table', { id: 'income-offers' }, h('thead', {}, h('tr', {}, ...['Offer', 'Settlements', 'Your income'].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, ...offerRows)) : h('p', { class: 'muted' }, 'No settled charge yet.'),
      h('h3', {}, 'Per agreement'),
      agreementRows.length ? scrollBox('Income per agreement', h('table', { id: 'income-agreements' }, h('thead', {}, h('tr', {}, ...['Agreement', 'Terms', 'Charged', 'Your part', 'Last settlement'].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, ...agreementRows))) : null);
  }

  const stop = onWalletChange(() => void render().catch((err) => showError(message(err))));
  await render();
  return stop;
};
export default page;
