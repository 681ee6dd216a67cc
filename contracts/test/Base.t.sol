// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ConferenceEscrow} from "../src/ConferenceEscrow.sol";
import {EscrowAnnex} from "../src/EscrowAnnex.sol";
import {OfferBook} from "../src/OfferBook.sol";
import {ProviderRegistry} from "../src/ProviderRegistry.sol";
import {IConferenceEscrow} from "../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../src/interfaces/IOfferBook.sol";
import {IProviderRegistry} from "../src/interfaces/IProviderRegistry.sol";
import {MockStablecoin} from "./mocks/Tokens.sol";

/// @notice The forge cheatcodes these tests use (forge-std cannot be installed here; forge has them built in).
interface Vm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory);
    function warp(uint256 timestamp) external;
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function deal(address account, uint256 balance) external;
    function expectRevert(bytes calldata revertData) external;
    function expectRevert(bytes4 selector) external;
    function expectRevert() external;
    function expectEmit() external;
    function addr(uint256 privateKey) external returns (address);
    function sign(uint256 privateKey, bytes32 digest) external returns (uint8 v, bytes32 r, bytes32 s);
    function label(address account, string calldata name) external;
    function assume(bool condition) external pure;
    function setEvmVersion(string calldata evm) external;
    function etch(address account, bytes calldata code) external;
}

/// @notice The project's own assertions and shared defaults: a registry with three providers, the escrow and
/// its offer book
/// with an admin and an operator, a mock stablecoin, one open offer per pricing model, funded customers.
abstract contract BaseTest {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint40 internal constant ACTIVATION_WINDOW = 1 hours;
    uint40 internal constant SETTLEMENT_WINDOW = 1 days;
    uint40 internal constant VOTING_PERIOD = 3 days;
    uint256 internal constant T0 = 1_800_000_000;

    // Regions, as bit numbers.
    uint8 internal constant EU = 0;
    uint8 internal constant US = 1;
    uint8 internal constant ASIA = 2;
    uint32 internal constant EU_ONLY = 1; // bit EU
    uint32 internal constant EU_US = 3; // bits EU, US
    uint32 internal constant ALL_REGIONS = 7; // bits EU, US, ASIA

    uint16 internal constant GDPR_SURCHARGE_BPS = 2000;
    uint16 internal constant REGION_SURCHARGE_BPS = 1000;

    // Price components per model: infrastructure, software, and the owner's margin. Each sums to a round price.
    uint88 internal constant FIXED_INFRA = 0.06 ether;
    uint88 internal constant FIXED_SOFTWARE = 0.03 ether;
    uint88 internal constant FIXED_MARGIN = 0.01 ether; // price 0.1 ether
    uint88 internal constant SECOND_INFRA = 6e11;
    uint88 internal constant SECOND_SOFTWARE = 3e11;
    uint88 internal constant SECOND_MARGIN = 1e11; // price 1e12 wei per second
    uint88 internal constant MINUTE_INFRA = 3.6e13;
    uint88 internal constant MINUTE_SOFTWARE = 1.8e13;
    uint88 internal constant MINUTE_MARGIN = 0.6e13; // price 6e13 wei per minute
    uint88 internal constant USD_INFRA = 60;
    uint88 internal constant USD_SOFTWARE = 30;
    uint88 internal constant USD_MARGIN = 10; // price 100 units (0.0001 mUSD) per second
    uint88 internal constant MINIMUM_CHARGE = 1e15;

    /// The monitor's key (its account is `monitor`), and the evidence commitment the tests' reports carry.
    uint256 internal constant MONITOR_KEY = 13;
    bytes32 internal constant EVIDENCE = keccak256("probe records");

    uint40 internal constant MAX_DURATION = 1 hours;
    uint40 internal constant MAX_MINUTES_SECONDS = 10 hours;
    uint40 internal constant MAX_WINDOW = 1 days;

    ProviderRegistry internal registry;
    ConferenceEscrow internal escrow;
    EscrowAnnex internal annex;
    OfferBook internal book;
    MockStablecoin internal usd;
    uint8 internal usdId;

    address internal admin;
    address internal operator;
    address internal customer;
    uint256 internal customerKey = 4;
    address internal stranger;
    address internal infra;
    address internal software;
    address internal monitor;
    address internal infraPayout;
    address internal softwarePayout;
    address internal monitorPayout;
    uint32 internal infraId;
    uint32 internal softwareId;
    uint32 internal monitorId;

    uint32 internal fixedTerms;
    uint32 internal dynamicTerms;
    uint32 internal minutesTerms;
    uint32 internal flexibleTerms;
    uint32 internal usdTerms;

    function setUp() public virtual {
        vm.warp(T0);
        admin = _account(1, "admin");
        operator = _account(2, "operator");
        customer = _account(customerKey, "customer");
        stranger = _account(5, "stranger");
        infra = _account(11, "infra");
        software = _account(12, "software");
        monitor = _account(MONITOR_KEY, "monitor");
        infraPayout = _account(21, "infraPayout");
        softwarePayout = _account(22, "softwarePayout");
        monitorPayout = _account(23, "monitorPayout");

        registry = new ProviderRegistry();
        annex = new EscrowAnnex();
        escrow =
            new ConferenceEscrow(admin, operator, registry, ACTIVATION_WINDOW, SETTLEMENT_WINDOW, VOTING_PERIOD, annex);
        book = escrow.BOOK();
        usd = new MockStablecoin();
        vm.prank(admin);
        usdId = escrow.addToken(address(usd));

        infraId = _register(infra, IProviderRegistry.Role.Infrastructure, infraPayout, EU_US, true);
        softwareId = _register(software, IProviderRegistry.Role.ConferenceSoftware, softwarePayout, ALL_REGIONS, true);
        monitorId = _register(monitor, IProviderRegistry.Role.Monitoring, monitorPayout, ALL_REGIONS, false);

        fixedTerms = _offer(IOfferBook.Model.FixedPrice, 0, MAX_DURATION, FIXED_INFRA, FIXED_SOFTWARE, FIXED_MARGIN, 0);
        dynamicTerms =
            _offer(IOfferBook.Model.DynamicPrice, 0, MAX_DURATION, SECOND_INFRA, SECOND_SOFTWARE, SECOND_MARGIN, 0);
        minutesTerms = _offer(
            IOfferBook.Model.TimeLimited, 0, MAX_MINUTES_SECONDS, MINUTE_INFRA, MINUTE_SOFTWARE, MINUTE_MARGIN, 0
        );
        flexibleTerms = _offer(
            IOfferBook.Model.FlexiblePeriod, 0, MAX_WINDOW, SECOND_INFRA, SECOND_SOFTWARE, SECOND_MARGIN, MINIMUM_CHARGE
        );
        usdTerms = _offer(IOfferBook.Model.DynamicPrice, usdId, MAX_DURATION, USD_INFRA, USD_SOFTWARE, USD_MARGIN, 0);

        vm.deal(customer, 1000 ether);
        usd.mint(customer, 1e12);
        vm.prank(customer);
        usd.approve(address(escrow), type(uint256).max);
    }

    function _account(uint256 key, string memory name) internal returns (address account) {
        account = vm.addr(key);
        vm.label(account, name);
    }

    function _register(address account, IProviderRegistry.Role role, address payout, uint32 regions, bool gdpr)
        internal
        returns (uint32 id)
    {
        vm.prank(account);
        id = registry.register(role, payout, regions, gdpr);
    }

    // ---- offers: drafted by the admin, priced by each provider, opened by the admin ------------

    function _params(IOfferBook.Model model, uint8 tokenId, uint40 maxDuration, uint88 margin, uint88 minimumCharge)
        internal
        pure
        returns (IOfferBook.OfferParams memory)
    {
        return IOfferBook.OfferParams({
            model: model,
            tokenId: tokenId,
            maxDuration: maxDuration,
            margin: margin,
            minimumCharge: minimumCharge,
            gdprSurchargeBps: GDPR_SURCHARGE_BPS,
            regionSurchargeBps: REGION_SURCHARGE_BPS
        });
    }

    function _ids(uint32 a) internal pure returns (uint32[] memory ids) {
        ids = new uint32[](1);
        ids[0] = a;
    }

    function _ids(uint32 a, uint32 b) internal pure returns (uint32[] memory ids) {
        ids = new uint32[](2);
        ids[0] = a;
        ids[1] = b;
    }

    function _ids(uint32 a, uint32 b, uint32 c) internal pure returns (uint32[] memory ids) {
        ids = new uint32[](3);
        ids[0] = a;
        ids[1] = b;
        ids[2] = c;
    }

    /// Drafts an offer as the admin.
    function _draft(IOfferBook.OfferParams memory params, uint32[] memory ids) internal returns (uint32 offerId) {
        vm.prank(admin);
        offerId = book.createOffer(params, ids);
    }

    function _setComponent(address provider, uint32 offerId, uint88 component) internal {
        vm.prank(provider);
        book.setComponent(offerId, component);
    }

    function _openOffer(uint32 offerId) internal returns (uint32 termsId) {
        vm.prank(admin);
        termsId = book.openOffer(offerId);
    }

    /// Drafts, prices and opens an offer: `providers[i]` (an account) sets `components[i]`.
    function _customOffer(
        IOfferBook.Model model,
        uint8 tokenId,
        uint40 maxDuration,
        address[] memory providers,
        uint88[] memory components,
        uint88 margin,
        uint88 minimumCharge
    ) internal returns (uint32 termsId) {
        uint32[] memory ids = new uint32[](providers.length);
        for (uint256 i; i < providers.length; ++i) {
            ids[i] = registry.idOf(providers[i]);
        }
        uint32 offerId = _draft(_params(model, tokenId, maxDuration, margin, minimumCharge), ids);
        for (uint256 i; i < providers.length; ++i) {
            _setComponent(providers[i], offerId, components[i]);
        }
        termsId = _openOffer(offerId);
    }

    function _two(address a, address b) internal pure returns (address[] memory list) {
        list = new address[](2);
        list[0] = a;
        list[1] = b;
    }

    function _three(address a, address b, address c) internal pure returns (address[] memory list) {
        list = new address[](3);
        list[0] = a;
        list[1] = b;
        list[2] = c;
    }

    function _amounts(uint88 a, uint88 b) internal pure returns (uint88[] memory list) {
        list = new uint88[](2);
        list[0] = a;
        list[1] = b;
    }

    function _amounts(uint88 a, uint88 b, uint88 c) internal pure returns (uint88[] memory list) {
        list = new uint88[](3);
        list[0] = a;
        list[1] = b;
        list[2] = c;
    }

    /// Drafts an offer with the infrastructure and software providers, lets each set its component, opens it.
    function _offer(
        IOfferBook.Model model,
        uint8 tokenId,
        uint40 maxDuration,
        uint88 infraComponent,
        uint88 softwareComponent,
        uint88 margin,
        uint88 minimumCharge
    ) internal returns (uint32 termsId) {
        termsId = _customOffer(
            model,
            tokenId,
            maxDuration,
            _two(infra, software),
            _amounts(infraComponent, softwareComponent),
            margin,
            minimumCharge
        );
    }

    // ---- agreement steps -------------------------------------------------------------------------

    function _deposit(uint32 termsId, uint256 quantity) internal view returns (uint256 deposit) {
        (deposit,,) = escrow.quote(termsId, 0, false, quantity);
    }

    /// Signs a FixedPrice or DynamicPrice agreement (ETH or token) with no constraints.
    function _sign(uint32 termsId) internal returns (uint256 id) {
        uint256 deposit = _deposit(termsId, 0);
        bool inEth = escrow.termsOf(termsId).tokenId == 0;
        vm.prank(customer);
        id = escrow.sign{value: inEth ? deposit : 0}(termsId, 0, false);
    }

    function _buyMinutes(uint32 minuteCount) internal returns (uint256 id) {
        uint256 deposit = _deposit(minutesTerms, minuteCount);
        vm.prank(customer);
        id = escrow.buyMinutes{value: deposit}(minutesTerms, 0, false, minuteCount);
    }

    function _reserve(uint40 from, uint40 to) internal returns (uint256 id) {
        uint256 deposit = _deposit(flexibleTerms, to - from);
        vm.prank(customer);
        id = escrow.reserve{value: deposit}(flexibleTerms, 0, false, from, to);
    }

    function _start(uint256 id) internal {
        vm.prank(customer);
        escrow.start(id);
    }

    function _activate(uint256 id) internal {
        vm.prank(operator);
        escrow.activate(id, EU);
    }

    function _stop(uint256 id) internal {
        vm.prank(customer);
        escrow.stop(id);
    }

    function _settle(uint256 id, uint16 availabilityBps) internal {
        bytes memory report = _report(id, availabilityBps, EVIDENCE, 0);
        vm.prank(operator);
        escrow.settle(id, availabilityBps, EVIDENCE, report);
    }

    /// The report of agreement `id`'s monitor (empty when its terms name none) on the conference's measured
    /// period: [startedAt, endedAt) of the conference, ending at `endedAt` if it is still running (the end a
    /// signed stop will give it), or the window [from, to) of a FlexiblePeriod agreement that has no conference.
    function _report(uint256 id, uint16 availabilityBps, bytes32 evidence, uint256 endedAt)
        internal
        returns (bytes memory)
    {
        IConferenceEscrow.Agreement memory a = escrow.agreementOf(id);
        if (escrow.termsOf(a.termsId).monitor == address(0)) return "";
        uint256 from = a.startedAt;
        uint256 to = a.status == IConferenceEscrow.Status.Ended ? a.endedAt : endedAt;
        if (a.status != IConferenceEscrow.Status.Ended && a.status != IConferenceEscrow.Status.Active) {
            IConferenceEscrow.Window memory w = escrow.windowOf(id);
            (from, to) = (w.from, w.to);
        }
        return _signReport(MONITOR_KEY, id, _session(id), from, to, availabilityBps, evidence);
    }

    /// The availability an overdue settlement of agreement `id` counts: none when its terms name a monitor
    /// (no report is no evidence), full when they do not.
    function _overdueAvailability(uint256 id) internal view returns (uint16) {
        return escrow.termsOf(escrow.agreementOf(id).termsId).monitor == address(0) ? 10_000 : 0;
    }

    /// `key`'s signature over an Availability report (see {signReport}).
    function _signReport(
        uint256 key,
        uint256 id,
        uint32 session,
        uint256 from,
        uint256 to,
        uint16 availabilityBps,
        bytes32 evidence
    ) internal returns (bytes memory) {
        return signReport(escrow, key, id, session, from, to, availabilityBps, evidence);
    }

    /// Signs (FixedPrice, DynamicPrice), activates now, and stops `used` seconds later.
    function _ended(uint32 termsId, uint256 used) internal returns (uint256 id) {
        id = _sign(termsId);
        _activate(id);
        vm.warp(block.timestamp + used);
        _stop(id);
    }

    // ---- customer accounts and signed orders ----------------------------------------------------

    /// `key`'s EIP-712 signature (r ‖ s ‖ v) over `order`, as the escrow's {orderDigest} gives it.
    function _signOrder(uint256 key, IConferenceEscrow.Order memory order) internal returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, escrow.orderDigest(order));
        return abi.encodePacked(r, s, v);
    }

    /// An order of `termsId` with no constraints, at most `maxCost`, valid for an hour.
    function _order(uint32 termsId, uint256 maxCost, uint256 nonce)
        internal
        view
        returns (IConferenceEscrow.Order memory)
    {
        return IConferenceEscrow.Order({
            termsId: termsId,
            allowedRegions: 0,
            gdpr: false,
            maxCost: maxCost,
            nonce: nonce,
            deadline: uint40(block.timestamp + 1 hours)
        });
    }

    /// Pays `amount` of token `tokenId` into the customer's account.
    function _depositToAccount(uint8 tokenId, uint256 amount) internal {
        vm.prank(customer);
        escrow.depositToAccount{value: tokenId == 0 ? amount : 0}(tokenId, amount);
    }

    /// The operator opens the customer's signed `order`.
    function _openOrder(IConferenceEscrow.Order memory order) internal returns (uint256 id) {
        bytes memory signature = _signOrder(customerKey, order);
        vm.prank(operator);
        id = escrow.openOrder(order, customer, signature);
    }

    /// The customer's EIP-712 signature stopping the running conference of agreement `id` at `stoppedAt`.
    function _stopSignature(uint256 key, uint256 id, uint40 stoppedAt, uint40 deadline)
        internal
        returns (bytes memory)
    {
        return _stopSignature(key, id, _session(id), stoppedAt, deadline);
    }

    /// The signature stopping conference `session` of agreement `id`.
    function _stopSignature(uint256 key, uint256 id, uint32 session, uint40 stoppedAt, uint40 deadline)
        internal
        returns (bytes memory)
    {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, escrow.stopDigest(id, session, stoppedAt, deadline));
        return abi.encodePacked(r, s, v);
    }

    /// The number of the agreement's running (or next) conference, which a signed stop names.
    function _session(uint256 id) internal view returns (uint32) {
        return escrow.minutesAccountOf(id).sessions + 1;
    }

    /// @dev When the last AgreementEnded event recorded (`vm.recordLogs()` before the call) ended agreement `id`:
    /// an agreement ended and settled in one call ({stopAndSettle}) keeps its end in that event only.
    function _endedAtLogged(uint256 id) internal returns (uint256 endedAt) {
        bool found;
        (found, endedAt) = endedAtLogged(vm.getRecordedLogs(), id);
        require(found, "no AgreementEnded recorded");
    }

    function _status(uint256 id) internal view returns (IConferenceEscrow.Status) {
        return escrow.agreementOf(id).status;
    }

    // ---- assertions ------------------------------------------------------------------------------

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": ", str(a), " != ", str(b)));
    }

    function assertEq(address a, address b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": addresses differ"));
    }

    function assertEq(bool a, bool b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": booleans differ"));
    }

    function assertEq(IConferenceEscrow.Status a, IConferenceEscrow.Status b, string memory what) internal pure {
        assertEq(uint256(a), uint256(b), what);
    }

    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert(what);
    }

    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (max <= min) return min;
        return min + x % (max - min + 1);
    }
}

/// @notice `key`'s EIP-712 signature (r ‖ s ‖ v) over an Availability report of `escrow`: what a monitor
/// signs, for the unit tests and the invariant handler alike.
function signReport(
    ConferenceEscrow escrow,
    uint256 key,
    uint256 id,
    uint32 session,
    uint256 from,
    uint256 to,
    uint16 availabilityBps,
    bytes32 evidence
) returns (bytes memory) {
    bytes32 digest = escrow.reportDigest(id, session, uint40(from), uint40(to), availabilityBps, evidence);
    (uint8 v, bytes32 r, bytes32 s) = Vm(address(uint160(uint256(keccak256("hevm cheat code"))))).sign(key, digest);
    return abi.encodePacked(r, s, v);
}

/// @notice `v` in decimal, for assertion messages (the one formatter every test file uses).
function str(uint256 v) pure returns (string memory) {
    if (v == 0) return "0";
    bytes memory digits;
    while (v != 0) {
        digits = abi.encodePacked(bytes1(uint8(48 + v % 10)), digits);
        v /= 10;
    }
    return string(digits);
}

/// @notice The end the last of `logs`' AgreementEnded events gave agreement `id`, if any.
function endedAtLogged(Vm.Log[] memory logs, uint256 id) pure returns (bool found, uint256 endedAt) {
    for (uint256 i = logs.length; i > 0; --i) {
        Vm.Log memory log = logs[i - 1];
        if (log.topics[0] == IConferenceEscrow.AgreementEnded.selector && uint256(log.topics[1]) == id) {
            (endedAt,) = abi.decode(log.data, (uint256, address));
            return (true, endedAt);
        }
    }
}
