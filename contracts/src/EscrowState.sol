// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IConferenceEscrow} from "./interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "./interfaces/IOfferBook.sol";
import {Errors} from "./libraries/Errors.sol";
import {Pricing} from "./libraries/Pricing.sol";

/// @title EscrowState
/// @notice The escrow's storage and the steps its two code contracts share: {ConferenceEscrow}, which holds the
/// state, and {EscrowAnnex}, whose code the escrow runs in its own storage (DELEGATECALL) for its customer
/// accounts, payouts, terms publishing and admin, because one contract's code is limited to 24 KB (EIP-170). Both inherit this
/// contract and declare no state of their own, so their storage layouts are one.
abstract contract EscrowState is AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice May activate, decline and settle agreements.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    /// @notice May draft offers in the offer book.
    bytes32 public constant OFFER_ADMIN_ROLE = keccak256("OFFER_ADMIN_ROLE");

    /// @notice The EIP-712 type a customer signs to stop a conference without paying gas. `session` names the
    /// conference: 1 + the sessions of the agreement settled before it ({MinutesAccount-sessions}).
    bytes32 public constant STOP_TYPEHASH =
        keccak256("Stop(uint256 agreementId,uint32 session,uint40 stoppedAt,uint40 deadline)");

    /// @notice The EIP-712 type a terms' monitor signs to report a conference's availability over its measured
    /// period, with the commitment to the probe records behind the figure (see {settle}).
    bytes32 public constant AVAILABILITY_TYPEHASH = keccak256(
        "Availability(uint256 agreementId,uint32 session,uint40 startedAt,uint40 endedAt,uint16 availabilityBps,bytes32 evidence)"
    );

    /// @notice The EIP-712 type a customer signs to open a conference from its account ({openOrder}). Its name is
    /// `Order` (an EIP-712 struct name is an identifier: the Solidity struct's qualified name would not be one).
    bytes32 public constant ORDER_TYPEHASH = keccak256(
        "Order(uint32 termsId,uint32 allowedRegions,bool gdpr,uint256 maxCost,uint256 nonce,uint40 deadline)"
    );

    /// @dev {Record-flags}: the customer requires GDPR compliance.
    uint8 internal constant GDPR = 1;
    /// @dev {Record-flags}: the customer narrowed the regions; `allowedRegions` holds them.
    uint8 internal constant NARROWED = 2;
    /// @dev {Record-flags}: the agreement was opened from an account; its deposit is locked there.
    uint8 internal constant FROM_ACCOUNT = 4;
    /// @dev {Record-flags}: `duration` is the agreement's own (TimeLimited's unused seconds, FlexiblePeriod's
    /// window or remaining window), not the terms' maxDuration.
    uint8 internal constant OWN_DURATION = 8;

    /// @dev An agreement as stored, in one slot: everything signing writes and every later step changes, so a
    /// FixedPrice or DynamicPrice agreement without narrowed regions costs one new slot. What the terms already
    /// say (model, token, price, maxDuration, the surcharge) is read from them; what differs from them is in
    /// {Details}. {agreementOf} puts the two back together as an {IConferenceEscrow-Agreement}.
    struct Record {
        address customer;
        uint32 termsId;
        IConferenceEscrow.Status status;
        uint8 flags;
        uint8 region;
        uint40 startedAt;
    }

    /// @dev An agreement's second slot, written only when it differs from the terms (narrowed regions, a
    /// TimeLimited or FlexiblePeriod agreement's own duration) or when a conference ends by a call of its own
    /// ({stop}, {end}, {stopBySignature}), which records `endedAt` for the settlement to read. {stopAndSettle}
    /// ends and settles at once and leaves `endedAt` to its {AgreementEnded} event.
    struct Details {
        uint32 allowedRegions;
        uint40 duration;
        uint40 endedAt;
    }

    // The state below is written by both code contracts, each in the escrow's storage: slither, which reads
    // each contract alone, sees some of it never written or never read in one of them (ignored below, each
    // with the detectors it raises; "written by the annex" means by its code running in the escrow).

    // Packed in one slot: signing reads and writes it once.
    uint64 internal _agreementCount;
    /// @dev Whether signing is paused ({ConferenceEscrow-paused}).
    // slither-disable-next-line uninitialized-state,constable-states -- written by the annex (setPaused)
    bool internal _paused;
    // slither-disable-next-line unused-state,constable-states -- the annex's (addToken); the escrow reads _tokens
    uint8 internal _tokenCount;

    /// @dev The number of terms versions ever published ({ConferenceEscrow-termsCount}).
    // slither-disable-next-line uninitialized-state,constable-states -- written by the annex (publishTerms)
    uint32 internal _termsCount;

    // slither-disable-next-line uninitialized-state -- written by the annex (addToken)
    mapping(uint8 tokenId => address token) internal _tokens;
    // slither-disable-next-line uninitialized-state -- written by the annex (publishTerms)
    mapping(uint32 termsId => IConferenceEscrow.Terms) internal _terms;
    mapping(uint256 agreementId => Record) internal _agreements;
    mapping(uint256 agreementId => Details) internal _details;
    // slither-disable-next-line unused-state -- the escrow's alone (bought minutes)
    mapping(uint256 agreementId => IConferenceEscrow.MinutesAccount) internal _minutesAccounts;
    // slither-disable-next-line unused-state -- the escrow's alone (reserved windows)
    mapping(uint256 agreementId => IConferenceEscrow.Window) internal _windows;
    mapping(uint32 providerId => mapping(uint8 tokenId => uint256 amount)) internal _earnings;
    mapping(address account => mapping(uint8 tokenId => uint256 amount)) internal _credits;
    // slither-disable-next-line uninitialized-state -- written by the annex (depositToAccount, openOrder)
    mapping(address customer => mapping(uint8 tokenId => IConferenceEscrow.Account)) internal _accounts;
    // slither-disable-next-line uninitialized-state -- written by the annex (openOrder, cancelOrders)
    mapping(address customer => mapping(uint256 word => uint256 bits)) internal _orderNonces;

    constructor() EIP712("ConferenceEscrow", "1") {}

    /// @dev Writes a new agreement: its one slot, and {Details} only when the agreement differs from its terms.
    function _open(
        address customer,
        uint32 termsId,
        uint32 regions,
        uint8 flags,
        uint256 duration,
        IConferenceEscrow.Status status
    ) internal returns (uint256 agreementId) {
        agreementId = ++_agreementCount;
        _agreements[agreementId] = Record({
            customer: customer,
            termsId: termsId,
            status: status,
            flags: flags,
            region: 0,
            startedAt: status == IConferenceEscrow.Status.Requested ? _now() : 0
        });
        if (flags & (NARROWED | OWN_DURATION) != 0) {
            _details[agreementId] = Details({
                allowedRegions: flags & NARROWED != 0 ? regions : 0, duration: SafeCast.toUint40(duration), endedAt: 0
            });
        }
    }

    /// @dev Announces a new agreement with everything its amounts depend on ({IConferenceEscrow-AgreementSigned}).
    function _announceSigned(
        uint256 agreementId,
        address customer,
        uint256 deposit,
        IConferenceEscrow.Terms storage terms,
        uint24 surchargeBps,
        uint32 regions,
        uint8 flags,
        uint256 duration
    ) internal {
        emit IConferenceEscrow.AgreementSigned(
            agreementId,
            _agreements[agreementId].termsId,
            customer,
            deposit,
            terms.model,
            terms.tokenId,
            terms.price,
            surchargeBps,
            regions,
            flags & GDPR != 0,
            duration
        );
    }

    /// @dev Whether `signature` over `digest` is the customer's. Its own key first: an EOA, and an EOA that
    /// delegated its code (EIP-7702), whose delegate need not implement ERC-1271 (the key still controls the
    /// account). Then, for an account with code, ERC-1271 (a smart-contract wallet, or a delegate that does).
    function _signedByCustomer(address customer, bytes32 digest, bytes calldata signature)
        internal
        view
        returns (bool)
    {
        // slither-disable-next-line unused-return -- the third value only details an error, and any error means "not the key's"
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == customer) return true;
        return
            customer.code.length != 0
                && SignatureChecker.isValidERC1271SignatureNowCalldata(customer, digest, signature);
    }

    /// @dev Takes the deposit: ETH with the call, or exactly `amount` of the ERC-20 (a token that
    /// delivers less, such as one with a fee on transfer, is refused).
    // slither-disable-next-line msg-value-in-nonpayable -- reached only from the payable sign, buyMinutes and reserve (slither cannot build this contract's call graph: see SECURITY.md)
    function _collect(uint8 tokenId, uint256 amount) internal {
        if (tokenId == 0) {
            if (msg.value != amount) revert Errors.Escrow_WrongDeposit(amount, msg.value);
            return;
        }
        if (msg.value != 0) revert Errors.Escrow_WrongDeposit(0, msg.value);
        IERC20 token = IERC20(_tokens[tokenId]);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert Errors.Escrow_UnsupportedToken(address(token), amount, received);
    }

    function _credit(address account, uint8 tokenId, uint256 amount) internal {
        _credits[account][tokenId] += amount;
        emit IConferenceEscrow.Credited(account, tokenId, amount);
    }

    /// @dev The constraint surcharge, the regions the agreement allows and its {Record-flags} (GDPR,
    /// NARROWED). Reverts if the constraints cannot be met by these terms.
    function _constrain(uint32 termsId, IConferenceEscrow.Terms storage terms, uint32 allowedRegions, bool gdpr)
        internal
        view
        returns (uint24 surchargeBps, uint32 regions, uint8 flags)
    {
        uint32 served = terms.regions;
        regions = allowedRegions == 0 ? served : allowedRegions & served;
        if (regions == 0) revert Errors.Escrow_NoRegionAllowed(termsId, allowedRegions);
        if (gdpr && !terms.gdpr) revert Errors.Escrow_GdprUnavailable(termsId);
        if (gdpr) flags = GDPR;
        if (regions != served) flags |= NARROWED;
        return (_surcharge(terms, flags), regions, flags);
    }

    /// @dev The surcharge the constraints in `flags` add to the terms' price, in basis points.
    function _surcharge(IConferenceEscrow.Terms storage terms, uint8 flags)
        internal
        view
        returns (uint24 surchargeBps)
    {
        if (flags & GDPR != 0) surchargeBps += terms.gdprSurchargeBps;
        if (flags & NARROWED != 0) surchargeBps += terms.regionSurchargeBps;
    }

    function _signable(uint32 termsId) internal view returns (IConferenceEscrow.Terms storage terms) {
        if (_paused) revert Errors.Escrow_Paused();
        terms = _terms[termsId];
        if (!terms.open) revert Errors.Escrow_TermsNotOpen(termsId);
    }

    /// @dev The deposit for the terms' longest conference: what {sign} takes and what an order locks (with
    /// the surcharged minimum, for FlexiblePeriod).
    function _fullDeposit(IConferenceEscrow.Terms storage terms, uint24 surchargeBps) internal view returns (uint256) {
        IOfferBook.Model model = terms.model;
        uint256 minimumCharge =
            model == IOfferBook.Model.FlexiblePeriod ? Pricing.surcharged(terms.minimumCharge, surchargeBps) : 0;
        return Pricing.deposit(model, terms.price, surchargeBps, terms.maxDuration, minimumCharge);
    }

    function _orderDigest(IConferenceEscrow.Order calldata order) internal view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(ORDER_TYPEHASH, order)));
    }

    /// @dev Block timestamps fit in 40 bits until the year 36812.
    function _now() internal view returns (uint40) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint40(block.timestamp);
    }
}
