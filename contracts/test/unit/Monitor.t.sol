// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {str} from "../Base.t.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IOfferBook} from "../../src/interfaces/IOfferBook.sol";
import {IProviderRegistry} from "../../src/interfaces/IProviderRegistry.sol";
import {Errors} from "../../src/libraries/Errors.sol";

/// @notice Offers that name an independent monitor: only its signed report settles, whoever submits it; no
/// report within the settlement window settles at 0 availability.
contract MonitorTest is UnitBase {
    uint256 internal constant OTHER_MONITOR_KEY = 14;
    uint256 internal constant MONITORED_PRICE = FIXED_PRICE + 0.02 ether; // the monitor's component on top

    uint32 internal monitoredTerms;
    address internal otherMonitor;

    function setUp() public override {
        super.setUp();
        monitoredTerms = _fixedOfferWithMonitor();
        otherMonitor = _account(OTHER_MONITOR_KEY, "otherMonitor");
        _register(
            otherMonitor, IProviderRegistry.Role.Monitoring, _account(24, "otherMonitorPayout"), ALL_REGIONS, true
        );
    }

    /// A monitored FixedPrice conference that ran 600 s from T0.
    function _endedMonitored() internal returns (uint256 id) {
        id = _ended(monitoredTerms, 600);
    }

    function _monitorReport(uint256 id, uint16 availabilityBps, bytes32 evidence) internal returns (bytes memory) {
        return _signReport(MONITOR_KEY, id, 1, T0, T0 + 600, availabilityBps, evidence);
    }

    // ---- the offer names its monitor -----------------------------------------------------------------

    function test_WhenOfferHasMonitoringProvider_TermsNameItsAccount() public view {
        assertEq(escrow.termsOf(monitoredTerms).monitor, monitor, "monitor");
        assertEq(escrow.termsOf(fixedTerms).monitor, address(0), "no monitor");
    }

    function test_RevertWhen_OfferHasTwoMonitors() public {
        uint32 offerId = _draft(
            _params(IOfferBook.Model.FixedPrice, 0, MAX_DURATION, FIXED_MARGIN, 0),
            _ids(infraId, monitorId, registry.idOf(otherMonitor))
        );
        _setComponent(infra, offerId, FIXED_INFRA);
        _setComponent(monitor, offerId, 1);
        _setComponent(otherMonitor, offerId, 1);
        vm.expectRevert(abi.encodeWithSelector(Errors.OfferBook_SecondMonitor.selector, registry.idOf(otherMonitor)));
        _openOffer(offerId);
    }

    // ---- the monitor's figure, not the operator's ----------------------------------------------------

    function test_WhenOperatorClaimsFullButMonitorMeasured60Percent_SettlementFollowsMonitor() public {
        uint256 id = _endedMonitored();
        bytes memory report = _monitorReport(id, 6000, EVIDENCE);
        // The operator's own figure is refused: with or without a report for it.
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidReport.selector, id));
        escrow.settle(id, 10_000, EVIDENCE, "");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidReport.selector, id));
        escrow.settle(id, 10_000, EVIDENCE, report);

        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 6000, EVIDENCE, 0, MONITORED_PRICE, false);
        vm.prank(operator);
        escrow.settle(id, 6000, EVIDENCE, report);
        assertEq(customer.balance - before, MONITORED_PRICE, "everything back, to the wei");
        assertEq(escrow.earningsOf(infraId, 0), 0, "infra earns nothing");
        assertEq(escrow.earningsOf(monitorId, 0), 0, "the monitor earns nothing");
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
    }

    function test_WhenAnyoneSubmitsMonitorsReport_Settles() public {
        uint256 id = _endedMonitored();
        bytes memory report = _monitorReport(id, 9000, EVIDENCE);
        vm.prank(stranger);
        escrow.settle(id, 9000, EVIDENCE, report);
        assertEq(escrow.earningsOf(monitorId, 0), 0.02 ether, "the monitor's component");
        assertEq(escrow.earningsOf(infraId, 0), FIXED_INFRA, "infra");
        assertEq(stranger.balance, 0, "nothing to the submitter");
    }

    function test_RevertWhen_ReportSignedByStranger() public {
        uint256 id = _endedMonitored();
        bytes memory report = _signReport(5, id, 1, T0, T0 + 600, 9000, EVIDENCE);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidReport.selector, id));
        escrow.settle(id, 9000, EVIDENCE, report);
    }

    function test_RevertWhen_ReportSignedByMonitorOfAnotherOffer() public {
        uint256 id = _endedMonitored();
        bytes memory report = _signReport(OTHER_MONITOR_KEY, id, 1, T0, T0 + 600, 9000, EVIDENCE);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidReport.selector, id));
        escrow.settle(id, 9000, EVIDENCE, report);
    }

    function test_RevertWhen_ReportForAnotherSessionOrPeriodOrAgreement() public {
        uint256 id = _endedMonitored();
        bytes[4] memory reports = [
            _signReport(MONITOR_KEY, id, 2, T0, T0 + 600, 9000, EVIDENCE),
            _signReport(MONITOR_KEY, id, 1, T0, T0 + 601, 9000, EVIDENCE),
            _signReport(MONITOR_KEY, id, 1, T0 + 1, T0 + 600, 9000, EVIDENCE),
            _signReport(MONITOR_KEY, id + 1, 1, T0, T0 + 600, 9000, EVIDENCE)
        ];
        for (uint256 i; i < reports.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidReport.selector, id));
            escrow.settle(id, 9000, EVIDENCE, reports[i]);
        }
    }

    function test_RevertWhen_ReportFigureOrEvidenceChanged() public {
        uint256 id = _endedMonitored();
        bytes memory report = _monitorReport(id, 7000, EVIDENCE);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidReport.selector, id));
        escrow.settle(id, 7500, EVIDENCE, report);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidReport.selector, id));
        escrow.settle(id, 7000, keccak256("other records"), report);
        assertEq(_status(id), IConferenceEscrow.Status.Ended, "nothing changed");
    }

    function test_RevertWhen_UnmonitoredSettlementCarriesReport() public {
        uint256 id = _ended(fixedTerms, 600);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_NoMonitor.selector, id));
        escrow.settle(id, 10_000, EVIDENCE, hex"01");
    }

    function test_WhenTimeLimitedSessions_EachReportNamesItsSession() public {
        uint32 terms = _customOffer(
            IOfferBook.Model.TimeLimited,
            0,
            MAX_MINUTES_SECONDS,
            _two(infra, monitor),
            _amounts(MINUTE_INFRA, MINUTE_SOFTWARE),
            MINUTE_MARGIN,
            0
        );
        vm.prank(customer);
        uint256 id = escrow.buyMinutes{value: 10 * MINUTE_PRICE}(terms, 0, false, 10);
        for (uint32 session = 1; session <= 2; ++session) {
            _start(id);
            _activate(id);
            uint256 startedAt = block.timestamp;
            vm.warp(block.timestamp + 60);
            _stop(id);
            // The first session's report does not settle the second.
            if (session == 2) {
                bytes memory stale = _signReport(MONITOR_KEY, id, 1, startedAt, startedAt + 60, 10_000, EVIDENCE);
                vm.expectRevert(abi.encodeWithSelector(Errors.Escrow_InvalidReport.selector, id));
                escrow.settle(id, 10_000, EVIDENCE, stale);
            }
            bytes memory report = _signReport(MONITOR_KEY, id, session, startedAt, startedAt + 60, 10_000, EVIDENCE);
            escrow.settle(id, 10_000, EVIDENCE, report);
        }
        assertEq(escrow.minutesAccountOf(id).charged, 2 * MINUTE_PRICE, "two minutes");
    }

    function test_WhenSignedStopAndReportNameSameEnd_StopAndSettleSettles() public {
        uint256 id = _active(monitoredTerms);
        vm.warp(T0 + 900);
        uint40 stoppedAt = uint40(T0 + 600);
        bytes memory stop = _stopSignature(customerKey, id, stoppedAt, uint40(T0 + 1000));
        bytes memory report = _monitorReport(id, 10_000, EVIDENCE);
        vm.recordLogs();
        vm.prank(operator);
        escrow.stopAndSettle(id, 10_000, EVIDENCE, report, stoppedAt, uint40(T0 + 1000), stop);
        assertEq(_endedAtLogged(id), T0 + 600, "ended at the signed time");
        assertEq(_status(id), IConferenceEscrow.Status.Settled, "settled");
    }

    function test_WhenWindowPassedUnused_ReportCoversTheWindow() public {
        uint32 terms = _customOffer(
            IOfferBook.Model.FlexiblePeriod,
            0,
            MAX_WINDOW,
            _two(infra, monitor),
            _amounts(SECOND_INFRA, SECOND_SOFTWARE),
            SECOND_MARGIN,
            MINIMUM_CHARGE
        );
        uint40 from = uint40(T0 + 100);
        uint40 to = uint40(T0 + 4100);
        (uint256 deposit,,) = escrow.quote(terms, 0, false, to - from);
        vm.prank(customer);
        uint256 id = escrow.reserve{value: deposit}(terms, 0, false, from, to);
        vm.warp(to);
        // Readiness shown for 80% of the window: the minimum is charged.
        bytes memory report = _signReport(MONITOR_KEY, id, 1, from, to, 8000, EVIDENCE);
        uint256 before = customer.balance;
        escrow.settle(id, 8000, EVIDENCE, report);
        assertEq(customer.balance - before, deposit - MINIMUM_CHARGE, "all but the minimum back");
    }

    // ---- no report: the documented rule --------------------------------------------------------------

    function test_WhenMonitorDownAndNoReportInWindow_OverdueSettlesAtZero() public {
        uint256 id = _endedMonitored();
        vm.warp(T0 + 600 + SETTLEMENT_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(Errors.Escrow_SettlementWindowOpen.selector, id, T0 + 600 + SETTLEMENT_WINDOW)
        );
        escrow.settleOverdue(id);
        vm.warp(T0 + 600 + SETTLEMENT_WINDOW + 1);
        uint256 before = customer.balance;
        vm.expectEmit();
        emit IConferenceEscrow.AgreementSettled(id, 0, bytes32(0), 0, MONITORED_PRICE, false);
        vm.prank(stranger);
        escrow.settleOverdue(id);
        assertEq(customer.balance - before, MONITORED_PRICE, "everything back, to the wei");
        assertEq(escrow.earningsOf(infraId, 0) + escrow.earningsOf(monitorId, 0), 0, "nobody earns");
        assertEq(escrow.creditOf(admin, 0), 0, "no margin");
        assertEq(address(escrow).balance, 0, "nothing left in the escrow");
    }

    function test_WhenReportArrivesLate_ItStillSettlesUntilOverdueIsCalled() public {
        uint256 id = _endedMonitored();
        vm.warp(T0 + 600 + SETTLEMENT_WINDOW + 100);
        bytes memory report = _monitorReport(id, 10_000, EVIDENCE);
        escrow.settle(id, 10_000, EVIDENCE, report);
        assertEq(escrow.earningsOf(monitorId, 0), 0.02 ether, "the monitor is paid");
    }

    // ---- gas -----------------------------------------------------------------------------------------

    /// What the monitor's report may add to a settlement (issue 18; `make bench-gas` measures it on anvil).
    uint256 internal constant REPORT_GAS_BUDGET = 10_000;

    /// Like with like: two DynamicPrice offers alike but for the second provider's role (the monitor, or
    /// the software provider in its place), each settling its second conference (both providers' earnings
    /// already non-zero). Isolated: each call of the test is a transaction of its own, so the settlement
    /// pays what it would on chain (intrinsic gas and calldata, cold accounts and slots: the monitor's code
    /// is looked up before its signature is checked).
    /// forge-config: default.isolate = true
    function test_MonitorsReportCostsAtMost10kGasMoreThanNoReport() public {
        uint32 unmonitored = _customOffer(
            IOfferBook.Model.DynamicPrice,
            0,
            MAX_DURATION,
            _two(infra, software),
            _amounts(SECOND_INFRA, SECOND_SOFTWARE),
            SECOND_MARGIN,
            0
        );
        uint32 monitored = _customOffer(
            IOfferBook.Model.DynamicPrice,
            0,
            MAX_DURATION,
            _two(infra, monitor),
            _amounts(SECOND_INFRA, SECOND_SOFTWARE),
            SECOND_MARGIN,
            0
        );
        uint256 without = _steadySettlementGas(unmonitored);
        uint256 with = _steadySettlementGas(monitored);
        assertTrue(
            with <= without + REPORT_GAS_BUDGET,
            string.concat("settle with a report ", str(with), " gas, without ", str(without), ": over 10,000 more")
        );
    }

    /// The gas of the operator's settlement of the offer's second conference (600 s, full availability).
    function _steadySettlementGas(uint32 termsId) internal returns (uint256) {
        _settle(_ended(termsId, 600), 10_000);
        uint256 id = _ended(termsId, 600);
        bytes memory report = _report(id, 10_000, EVIDENCE, 0);
        vm.prank(operator);
        uint256 before = gasleft();
        escrow.settle(id, 10_000, EVIDENCE, report);
        return before - gasleft();
    }
}
